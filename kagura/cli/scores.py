"""`kagura monitor score ID NAME VALUE` and `kagura monitor scores`: mark runs, then read the marks."""

from __future__ import annotations

from typing import Annotated

import typer

from kagura.cli.options import (
    AgentOpt,
    DbOpt,
    JsonOpt,
    SinceOpt,
    UntilOpt,
    UsageError,
    check_choice,
    console,
    inherited,
    open_store,
    parse_window,
    print_json,
    reading,
)

SCORE_GROUPS = ("agent", "model", "date")


def score(
    ctx: typer.Context,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="An execution id, or a unique prefix of one.")
    ],
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The score's name: helpful, accuracy, ...")
    ],
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="A number (0.8), true/false (also yes/no, pass/fail, good/bad), or a label.",
        ),
    ],
    comment: Annotated[
        str | None, typer.Option("--comment", "-m", help="Why: kept with the score.")
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Give a run a score (appended: scoring the same name again adds a newer score)."""
    from kagura.observability.store.scores import parse_value

    db = inherited(ctx, "db", db)
    if not execution_id.strip():
        raise UsageError("give an execution id (copy one from `kagura monitor list`)")
    if not value.strip():
        raise UsageError("give a VALUE: a number, true/false or a label")
    store = open_store(db)
    try:
        stored = store.score(execution_id, name, parse_value(value), comment=comment)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if json:
        print_json(stored)
        return
    from kagura.observability.render.scores import fmt_score

    console().print(
        f"Scored {stored['execution_id']}: {stored['name']} = "
        f"{fmt_score(stored['value'], stored['kind'])} ({stored['kind']})",
        highlight=False,
    )


def scores(
    ctx: typer.Context,
    group_by: Annotated[
        str, typer.Option("--group-by", "-g", help="agent, model or date.")
    ] = "agent",
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Scores per name and agent (or model, or day of the run): runs scored, mean, min, max, top label."""
    group = check_choice(group_by, SCORE_GROUPS, "--group-by")
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db)
    rows = store.score_summary(group, since=start, agent_name=agent, until=end).rows()
    if json:
        print_json(rows)
        return
    if not rows:
        console().print("No scores yet: add one with `kagura monitor score ID NAME VALUE`.")
        return
    from kagura.observability.render.scores import render_score_summary

    console().print(render_score_summary(rows, group))


def register(monitor: typer.Typer) -> None:
    """Add `score` and `scores` to the `monitor` group."""
    monitor.command("score")(score)
    monitor.command("scores")(scores)
