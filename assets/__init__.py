"""Dagster assets of the assurance graph: thin layers that call `assurance` and describe results for the UI."""
