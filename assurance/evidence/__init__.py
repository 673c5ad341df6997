"""The evidence store: publishing runs whole, reading their history, audit bundles and SQL."""
