"""Loading a version's model and scoring datasets with it."""
