"""Records, datasets, findings and check declarations: the values every layer shares."""
