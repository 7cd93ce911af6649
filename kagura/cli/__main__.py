"""`python -m kagura.cli`: the same as the `kagura` command."""

from kagura.cli import app

app(prog_name="kagura")
