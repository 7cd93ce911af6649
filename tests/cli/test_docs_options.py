"""docs/cli.md and the real command line name the same options, both ways.

Each "## `kagura ...`" section must mention every option of its command(s), and
every `--option` its prose mentions must be a real option of that command. The
README's claims about shared options are checked against the commands too.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from kagura.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "cli.md"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def tree() -> dict[tuple[str, ...], object]:
    """Every command by its path below `kagura` (groups included)."""
    found: dict[tuple[str, ...], object] = {}

    def walk(group, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            found[(*path, name)] = command
            if hasattr(command, "commands"):
                walk(command, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def options(command) -> set[str]:
    return {
        opt
        for param in command.params
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--") and opt != "--help"
    }


def sections() -> list[tuple[list[tuple[str, ...]], str]]:
    """(command paths named in the heading, the section's prose without code blocks)."""
    commands = tree()
    text = DOCS.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    out = []
    for block in re.split(r"^## ", prose, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        paths = []
        for named in re.findall(r"`kagura ([^`]*)`", heading):
            words = named.split()
            path: tuple[str, ...] = ()
            for word in words:
                if (*path, word) in commands:
                    path = (*path, word)
                else:
                    break
            if path:
                paths.append(path)
        out.append((paths, heading + "\n" + body))
    return out


def test_every_real_option_is_in_its_section():
    commands = tree()
    missing = []
    for paths, body in sections():
        mentioned = set(OPTION.findall(body))
        for path in paths:
            for opt in sorted(options(commands[path]) - mentioned):
                missing.append(f"kagura {' '.join(path)} {opt}")
    assert not missing, "docs/cli.md does not mention: " + ", ".join(missing)


def test_every_option_a_section_names_is_real():
    commands = tree()
    unknown = []
    for paths, body in sections():
        if not paths:
            continue
        real = set().union(*(options(commands[p]) for p in paths))
        for opt in sorted(set(OPTION.findall(body)) - real):
            unknown.append(f"kagura {' '.join(paths[0])}: {opt}")
    assert not unknown, "docs/cli.md names options these commands do not take: " + ", ".join(
        unknown
    )


def test_every_command_has_a_section_with_its_options():
    named = {path for paths, _ in sections() for path in paths}
    assert set(tree()) <= named, sorted(set(tree()) - named)


def shared_claims() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## Conventions")
    return text[start : text.index("\n## ", start + 5)]


def test_the_conventions_say_which_commands_take_the_shared_options():
    """The list of commands the Conventions give for --agent, --since/--until and --json is exact."""
    commands = tree()
    conventions = shared_claims()
    for opt in ("--agent", "--since", "--json"):
        match = re.search(rf"`{opt}[^`]*`[^.]*?\(([^)]*)\)", conventions)
        assert match, f"the Conventions do not list the commands that take {opt}"
        listed = set(re.findall(r"`([a-z]+)`", match.group(1)))
        takes = {
            path[-1]
            for path, command in commands.items()
            if path[0] == "monitor"
            and len(path) == 2
            and opt in options(command)
            and not command.hidden  # an analytic's name for a listed command
        }
        assert listed == takes, (opt, sorted(listed ^ takes))


def test_the_tutorial_uses_id_prefixes_trace_accepts_on_a_large_store():
    """A prefix of 16 characters can match two runs started in the same millisecond."""
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    for cut in re.findall(r'\["id"\]\[:(\d+)\]', text):
        assert int(cut) >= 21, f"the tutorial cuts an id to {cut} characters"
    for shown in re.findall(r"\bexec_[0-9a-f]+", text):
        assert len(shown) >= 21, shown


def test_the_readme_does_not_promise_json_everywhere():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    live = tree()[("monitor", "live")]
    if "--json" not in options(live):
        assert not re.search(r"every command (takes|has|accepts) `?--json", readme, re.I)
