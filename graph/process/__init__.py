"""The process level: the `udt` command line and logging."""
