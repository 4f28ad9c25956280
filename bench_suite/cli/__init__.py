"""The command line (Typer): the only room that knows the terminal."""

from bench_suite.cli.app import app, main

__all__ = ["app", "main"]
