"""The `kagura` command line: `kagura monitor ...` and `kagura demo`.

Commands load the store, rich and the agent runtime inside their bodies, so
`kagura --help` stays fast and `kagura monitor` never imports litellm. Every
error reaches the user as one line on stderr with exit code 1 (not there) or
2 (bad usage); set KAGURA_DEBUG=1 to see the traceback of an unexpected one.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from kagura.cli import fastparams
from kagura.cli.options import CliError

fastparams.install()


class KaguraGroup(TyperGroup):
    """The top-level group: turns errors raised by any command into one line and an exit code."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the CLI; a usage error (unknown option, bad value) is one line on stderr, exit 2."""
        from typer._click import exceptions  # typer carries its own copy of click

        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except exceptions.NoArgsIsHelpError as error:
            error.show()  # the help text, as `kagura` alone always printed
            sys.exit(error.exit_code)
        except exceptions.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "kagura"
            message = " ".join(error.format_message().split())
            sys.stderr.write(f"Error: {message} (see `{command} --help`)\n")
            sys.exit(error.exit_code)
        except exceptions.ClickException as error:
            sys.stderr.write(f"Error: {' '.join(error.format_message().split())}\n")
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.stderr.write("Aborted.\n")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        from kagura.observability.errors import AmbiguousIdError, StoreError

        try:
            return super().invoke(ctx)
        except CliError as error:
            fail(str(error), error.exit_code)
        except AmbiguousIdError as error:
            fail(str(error), 2)
        except StoreError as error:
            fail(str(error), 1)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("KAGURA_DEBUG"):
                raise
            fail(f"{type(error).__name__}: {error} (set KAGURA_DEBUG=1 for the traceback)", 1)


def fail(message: str, code: int) -> None:
    """Print `Error: message` on stderr and exit with `code`."""
    sys.stderr.write(f"Error: {message}\n")
    raise typer.Exit(code)


app = typer.Typer(
    cls=KaguraGroup,
    name="kagura",
    help="Kagura: local-first telemetry for LLM agents. Record runs with @agent, then inspect them here.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # plain help: rich formatting would double `kagura --help` time
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from kagura import __version__

        sys.stdout.write(f"kagura-ai {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def kagura(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Kagura: local-first telemetry for LLM agents. Record runs with @agent, then inspect them here."""


def _register() -> None:
    from kagura.cli import demo, monitor, otel, report

    app.add_typer(monitor.monitor_app, name="monitor")
    app.command("demo")(demo.demo)
    otel.register(app, monitor.monitor_app)
    report.register(monitor.monitor_app)
    monitor.add_analytic_names(monitor.monitor_app)


_register()


def main() -> None:
    """Run the `kagura` command line."""
    app()
