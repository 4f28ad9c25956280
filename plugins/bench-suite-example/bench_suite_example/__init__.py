"""Example third-party plugins for bench-suite (see this package's README)."""
