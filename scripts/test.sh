#!/usr/bin/env bash
# Installs what the tests need into .venv and runs the test suite.
# `bash scripts/test.sh -m "not slow"` is the quick loop: it runs on two worker processes
# (pytest-xdist, a file per worker at a time) unless `-n` is given. The full suite runs in
# one process: its crash and concurrency tests time real processes of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# Compiled modules (and pytest's rewritten test modules) are cached under .venv, never in
# the source tree, even where the environment turns bytecode caching off: each CLI test
# starts a new interpreter, which would otherwise compile the package again.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$PWD/.venv/pycache"
workers=()
case " $* " in
  *"not slow"*)
    case " $* " in
      *" -n"* | *" --numprocesses"*) ;;
      *) workers=(-n 2 --dist loadfile) ;;
    esac
    ;;
esac
exec .venv/bin/python -m pytest "${workers[@]}" "$@"
