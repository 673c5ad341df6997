"""The `assurance` command line."""
