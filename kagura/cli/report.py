"""`kagura monitor report`: one self-contained HTML page of the store, to open from disk.

The command parses its options, asks the store through `render.report.collect`,
renders the page and writes it owner-only (0600) under a temporary name first, so
an existing report is replaced whole or not at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kagura.cli.options import (
    AgentOpt,
    CliError,
    DbOpt,
    JsonOpt,
    MonthSinceOpt,
    NotFound,
    SessionOpt,
    TagOpt,
    UntilOpt,
    UsageError,
    UserOpt,
    parse_window,
    print_json,
    reading,
)


def report(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the page to this file ('-' for stdout); it is created owner-only (0600).",
        ),
    ] = "report.html",
    agent: AgentOpt = None,
    since: MonthSinceOpt = "30d",
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    traces: Annotated[
        int,
        typer.Option(
            "--traces",
            min=0,
            max=500,
            help="Embed the runs and events of this many recent traces for the waterfalls.",
        ),
    ] = 50,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write an HTML report (cost, latency, regressions, errors, health, trace waterfalls) that opens offline."""
    from kagura.observability.render import report as page

    start, end = parse_window(since, until)
    target = None if output == "-" else _target(output)
    store, agent = reading(ctx, agent, db, session, user, tag)
    try:
        data = page.collect(
            store,
            since=start,
            until=end,
            agent=agent,
            session=session,
            user=user,
            tag=tag,
            traces=traces,
        )
    finally:
        store.close()
    text = page.render_html(data)
    if target is None:
        sys.stdout.write(text)
        return
    _write_private(target, text)
    counts = {
        "path": str(target),
        "bytes": len(text.encode()),
        "runs": data["summary"]["total_executions"],
        "days": len(data["cost_by_date"]),
        "agents": len(data["cost_by_agent"]),
        "traces": len(data["traces"]),
    }
    if json:
        print_json(counts)
    else:
        sys.stdout.write(
            f"Wrote {target} ({counts['bytes'] / 1024:,.0f} KB: {counts['runs']:,} runs over "
            f"{counts['days']} day(s), {counts['agents']} agent(s), {counts['traces']} trace(s))\n"
        )


def _target(output: str) -> Path:
    """The file -o names, checked before any work: not a folder, in a folder that exists."""
    if not output.strip():
        raise UsageError("-o needs a file name (or '-' for stdout)")
    path = Path(output).expanduser()
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder; give a file name such as {path / 'report.html'}")
    folder = path.parent
    if not folder.exists():
        raise NotFound(f"folder {folder} does not exist; create it or pick another -o")
    if not folder.is_dir():
        raise NotFound(f"cannot write {path}: {folder} is not a folder")
    return path


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` owner-only: a temporary file beside it, then a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {error.strerror or error}; pick another -o") from None


def register(monitor: typer.Typer) -> None:
    """Add `report` to the `monitor` group."""
    monitor.command("report")(report)
