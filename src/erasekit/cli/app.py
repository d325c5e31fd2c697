"""The ``erasekit`` command: one group whose subcommands load on first use.

Exit codes: 0 success, 2 bad input or usage (one line on stderr, no traceback unless
``--debug``). Nothing is written when a command fails.
"""

from __future__ import annotations

import importlib
import sys

import click

from erasekit._version import __version__

# command name → "module:attribute"; a family's commands live in one module each
COMMANDS = {
    "train": "erasekit.cli.unlearn:train",
    "unlearn": "erasekit.cli.unlearn:unlearn",
    "methods": "erasekit.cli.unlearn:list_methods",
    "demo": "erasekit.cli.unlearn:demo",
    "erase": "erasekit.cli.concepts:erase",
    "select": "erasekit.cli.features:select",
    "sisa": "erasekit.cli.ledger:sisa",
    "requests": "erasekit.cli.ledger:requests",
    "models": "erasekit.cli.ledger:models",
    "testbed": "erasekit.cli.generative:testbed",
    "generate": "erasekit.cli.generative:generate",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, "--version", prog_name="erasekit", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (may be given anywhere).")
def app(debug: bool) -> None:
    """erasekit — remove training data, concepts and features from models, and prove it against the exact reference."""


EXIT_TEMPORARY_FAILURE = 75  # sysexits.h EX_TEMPFAIL: run again once the environment is fixed


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit code 2 (75 when the
    disk is full or not writable: nothing was wrong with the input)."""
    from erasekit.core import progress
    from erasekit.core.errors import ErasekitError
    from erasekit.core.io import storage_fault

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"] or ["--help"]  # --debug may stand anywhere
    try:
        with progress.session():
            # outside standalone mode click returns a command's Exit code instead of raising it
            returned = app.main(args=args, prog_name="erasekit", standalone_mode=False)
        if isinstance(returned, int) and not isinstance(returned, bool) and returned != 0:
            return returned
    except (ErasekitError, OSError) as exc:
        fault = storage_fault(exc)
        if debug or (fault is None and not isinstance(exc, ErasekitError)):
            raise
        if fault is not None:  # the disk or its permissions, not the input: the same command works once fixed
            print(f"erasekit: error: {fault}", file=sys.stderr)
            return EXIT_TEMPORARY_FAILURE
        print(f"erasekit: error: {exc}", file=sys.stderr)
        return 2
    except click.exceptions.UsageError as exc:
        if debug:
            raise
        print(f"erasekit: error: {exc.format_message()} (see --help)", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        print("erasekit: aborted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


def run() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
