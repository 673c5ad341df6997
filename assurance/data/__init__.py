"""Reading reference and current data from any fsspec URI."""
