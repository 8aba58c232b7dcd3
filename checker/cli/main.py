"""The ``fromscratch`` command: thin wiring of the engine to the terminal.

Bad input ends with one line on stderr and exit code 2; set FROMSCRATCH_DEBUG=1
for a traceback before that line (the exit code stays the same).
"""

from __future__ import annotations

import os
import re
import sys
import traceback

import click
import typer

from checker import __version__
from checker.cli import audit_cmd, compare_cmd, demo_cmd, registry_cmd, rules_cmd
from checker.cli.display import err_console
from checker.errors import CheckerError
from checker.exitcodes import ExitCode

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Audit 'from scratch' claims about AI foundation models. Exit codes: 0 pass, 1 a criterion failed, "
                       "2 usage or input error, 3 inconclusive.")
app.command("audit")(audit_cmd.audit)
app.command("compare")(compare_cmd.compare)
app.command("demo")(demo_cmd.demo)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(rules_cmd.app, name="rules")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Show the version and exit.", is_eager=True)) -> None:
    if version:
        typer.echo(f"fromscratch {__version__}")
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> int:
    try:
        code = app(args=argv, prog_name="fromscratch", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.UsageError as exc:  # one line, like every other input error
        if not exc.format_message():  # no arguments at all: the help was shown
            return int(ExitCode.USAGE)
        hint = f" (see 'fromscratch {exc.ctx.command_path.split(' ', 1)[1]} --help')" if exc.ctx and " " in exc.ctx.command_path else " (see 'fromscratch --help')"
        err_console.print(f"fromscratch: {_once(exc.format_message())}{hint}", markup=False, soft_wrap=True)
        return int(ExitCode.USAGE)
    except click.exceptions.Abort:
        err_console.print("fromscratch: aborted")
        return 130
    except CheckerError as exc:
        _traceback()
        err_console.print(f"fromscratch: {exc}", markup=False, soft_wrap=True)
        return int(ExitCode.USAGE)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else int(ExitCode.USAGE))
    except KeyboardInterrupt:
        err_console.print("fromscratch: interrupted")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line and no partial report
        _traceback()
        if _out_of_memory(exc):
            err_console.print(f"fromscratch: out of memory ({exc.__class__.__name__}: {_first_line(exc)}); nothing was "
                              "reported. On a GPU, '--device cpu' runs the same audit in host memory",
                              markup=False, soft_wrap=True)
            return int(ExitCode.USAGE)
        first = _first_line(exc)
        err_console.print(f"fromscratch: internal error: {exc.__class__.__name__}: {first} "
                          "(please report it; FROMSCRATCH_DEBUG=1 shows the traceback)", markup=False, soft_wrap=True)
        return int(ExitCode.USAGE)
    return 0


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


def _out_of_memory(exc: BaseException) -> bool:
    """The host's MemoryError or torch's device out-of-memory error (``torch.cuda.OutOfMemoryError``,
    named here so that the command line does not import torch to recognise it)."""
    return isinstance(exc, MemoryError) or exc.__class__.__name__ == "OutOfMemoryError"


def _traceback() -> None:
    """With FROMSCRATCH_DEBUG set, the traceback goes to stderr; the one-line message and the
    exit code stay the same (debug output never changes an exit code)."""
    if os.environ.get("FROMSCRATCH_DEBUG"):
        traceback.print_exc(file=sys.stderr)


def _once(message: str) -> str:
    """Each sentence once: click and typer both append "Did you mean 'audit'?" to an unknown command."""
    sentences = re.split(r"(?<=[.?!])\s+", message.strip())
    return " ".join(dict.fromkeys(sentences))


def entry() -> None:
    sys.exit(main())
