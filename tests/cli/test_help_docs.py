"""Every command, including those other modules register, has help text and a section in docs/cli.md."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from kagura.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def commands(group, prefix: str = "kagura"):
    """(full name, click command) for every command under `group`, groups included."""
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        yield full, command
        if hasattr(command, "commands"):
            yield from commands(command, full)


def test_every_command_and_option_has_help():
    root = typer.main.get_command(app)
    found = dict(commands(root))
    assert {
        "kagura demo",
        "kagura monitor",
        "kagura monitor live",
        "kagura monitor list",
        "kagura monitor stats",
        "kagura monitor trace",
        "kagura monitor cost",
        "kagura monitor compact",
        "kagura monitor prune",
    } <= set(found)
    for name, command in found.items():
        assert (command.help or "").strip(), f"{name} has no help text"
        for param in command.params:
            if param.name != "help":
                assert (getattr(param, "help", None) or "").strip(), (
                    f"{name} {param.name} has no help text"
                )


def test_every_command_has_a_section_in_docs_cli_md():
    headings = [
        line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("## ")
    ]
    for name, _ in commands(typer.main.get_command(app)):
        pattern = re.compile(rf"`{re.escape(name)}( [^`]*)?`")
        assert any(pattern.search(h) for h in headings), f"docs/cli.md has no section for `{name}`"


def test_help_runs_through_the_entry_point(cli):
    result = cli("monitor", "--help")
    assert result.returncode == 0
    for name in ("live", "list", "stats", "trace", "cost", "compact", "prune"):
        assert re.search(rf"^\s+{name}\s+\S", result.stdout, re.M), name


def test_version(cli):
    import kagura

    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"kagura-ai {kagura.__version__}\n")
