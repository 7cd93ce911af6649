"""`kagura monitor doctor`: check the telemetry store, and repair what is safe.

The checks and repairs live in `kagura.observability.store.doctor`; this command
parses options, prints the report (rich or JSON) and exits 1 while a problem
remains (a listed lake file missing or unreadable, a failed integrity check).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kagura.cli.options import DbOpt, JsonOpt, console, inherited, open_store, print_json

RepairOpt = Annotated[
    bool,
    typer.Option(
        "--repair",
        help="Remove unlisted lake files, move damaged ones to <lake>/damaged/ and unlist them, tighten permissions.",
    ),
]
DeepOpt = Annotated[
    bool, typer.Option("--deep", help="Read every listed lake file whole, not only its footer.")
]


def doctor(
    ctx: typer.Context,
    repair: RepairOpt = False,
    deep: DeepOpt = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check the store: tail size, lake files and bytes, manifest against files, orphans, permissions."""
    from kagura.observability.store import doctor as checks

    store = open_store(inherited(ctx, "db", db))
    try:
        if repair:
            result = checks.repair(store, deep=deep)
            report = result["after"]
        else:
            result = checks.check(store, deep=deep)
            report = result
    finally:
        store.close()
    if json:
        print_json(result)
    else:
        out = console()
        if repair:
            _print_report(out, result["before"], "Before repair")
            _print_actions(out, result["actions"])
            _print_report(out, report, "After repair")
        else:
            _print_report(out, report, "Telemetry store")
    if not report["healthy"]:
        raise typer.Exit(1)


def _print_report(out: Any, report: dict[str, Any], title: str) -> None:
    db, tail, lake = report["db"], report["tail"], report["lake"]
    out.print(f"[bold]{title}[/bold]: {db['path']}")
    out.print(
        f"  database: {db['bytes']:,} bytes (+ {db['wal_bytes']:,} WAL), schema {db['schema_version']}, "
        f"integrity {db['integrity']}"
    )
    out.print(
        f"  tail: {tail['settled']:,} settled and {tail['running']:,} running runs, {tail['events']:,} events"
    )
    out.print(
        f"  lake: {lake['segments']:,} segments, {lake['files']:,} files, {lake['bytes']:,} bytes, "
        f"{lake['executions']:,} runs, {lake['events']:,} events"
    )
    out.print(
        f"  unlisted files: {len(report['orphans'])}; retired, awaiting readers: {len(report['retired'])}; "
        f"quarantined: {lake['quarantined']}"
    )
    pending = report.get("prune_pending")
    if pending:
        out.print(
            f"  prune pending: {len(pending['files'])} file(s), {pending['bytes']:,} bytes"
            + (", database free pages" if pending["vacuum"] else "")
            + f"; readers: {', '.join(map(str, pending['reader_pids'])) or 'none seen'}",
            soft_wrap=True,
        )
    forwarding = report.get("forwarding")
    if forwarding:
        out.print(
            f"  OTLP forwarding to {forwarding.get('endpoint')}: {forwarding.get('sent', 0):,} spans sent, "
            f"{forwarding.get('unsent', 0):,} unsent",
            soft_wrap=True,
        )
    for problem in report["problems"]:
        out.print(f"  [red]problem[/red]: {problem}", soft_wrap=True)
    for warning in report["warnings"]:
        out.print(f"  [yellow]warning[/yellow]: {warning}", soft_wrap=True)
    if report["healthy"] and not report["warnings"]:
        out.print("  [green]healthy[/green]")


def _print_actions(out: Any, actions: list[dict[str, Any]]) -> None:
    if not actions:
        out.print("Nothing to repair.")
        return
    out.print("[bold]Repairs[/bold]")
    for action in actions:
        if action["action"] == "unlisted":
            out.print(
                f"  unlisted segment {action['segment']} ({action['date']}): "
                f"{action['runs_lost']:,} runs lost; files kept in {', '.join(action['moved_to']) or '-'}",
                soft_wrap=True,
            )
        elif action["action"] == "removed":
            out.print(f"  removed unlisted file {action['path']}", soft_wrap=True)
        elif action["action"] == "chmod":
            out.print(f"  chmod {action['mode']} {action['path']}", soft_wrap=True)
        else:
            out.print(
                f"  {action['action']}: {action['path']} ({action.get('error', '')})",
                soft_wrap=True,
            )


def register(monitor: typer.Typer) -> None:
    """Add `doctor` to the `monitor` group."""
    monitor.command("doctor")(doctor)
