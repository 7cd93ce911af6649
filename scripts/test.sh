#!/usr/bin/env bash
# Installs what the tests need into .venv and runs the test suite.
#   bash scripts/test.sh                  every test (what CI runs): the quick ones on two
#                                         workers, then the slow ones in one process
#   bash scripts/test.sh -m "not slow"    the quick loop, on two workers
#   bash scripts/test.sh ARGS...          pytest ARGS (two workers when they say "not slow"
#                                         and give no -n)
# Slow tests run in one process: the crash and concurrency tests time real processes of
# their own. The workers are pytest-xdist's, a file per worker at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# Compiled modules (and pytest's rewritten test modules) are cached under .venv, never in
# the source tree, even where the environment turns bytecode caching off: each CLI test
# starts a new interpreter, which would otherwise compile the package again.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$PWD/.venv/pycache"
pytest=(.venv/bin/python -m pytest)
workers=(-n 2 --dist loadfile)
if [ $# -eq 0 ]; then
  status=0
  "${pytest[@]}" "${workers[@]}" -m "not slow" || status=$?
  # Exit code 5 means no test was selected, which is no failure here.
  "${pytest[@]}" -m slow || { s=$?; [ "$s" -eq 5 ] || status=$s; }
  exit "$status"
fi
case " $* " in
  *"not slow"*)
    case " $* " in
      *" -n"* | *" --numprocesses"*) workers=() ;;
    esac
    ;;
  *) workers=() ;;
esac
exec "${pytest[@]}" "${workers[@]}" "$@"
