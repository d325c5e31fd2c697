"""The command line: ``app`` (the click group), shared ``options`` and one module per family."""

from erasekit.cli.app import app, main, run

__all__ = ["app", "main", "run"]
