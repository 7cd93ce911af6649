"""`kagura monitor search TEXT`: find runs by what their errors, arguments and content say."""

from __future__ import annotations

from typing import Annotated

import typer

from kagura.cli.options import (
    AgentOpt,
    DbOpt,
    JsonOpt,
    SessionOpt,
    SinceOpt,
    TagOpt,
    UntilOpt,
    UsageError,
    UserOpt,
    console,
    parse_window,
    print_json,
    reading,
)


def search(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="Text to find (any case, taken literally).")
    ],
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="At most this many places.")
    ] = 50,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Runs whose error, arguments, tool calls or captured content contain TEXT, newest first (a plain scan)."""
    if not text.strip():
        raise UsageError("give some text to search for")
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag)
    rows = store.search(text, agent, start, end, limit=limit).rows()
    if json:
        print_json(rows)
        return
    if not rows:
        console().print(f"No run mentions {text!r}.", highlight=False)
        return
    from kagura.observability.render.search import render_search

    console().print(render_search(rows, text))


def register(monitor: typer.Typer) -> None:
    """Add `search` to the `monitor` group."""
    monitor.command("search")(search)
