"""The embedded demo: a local registry with planted problems."""
