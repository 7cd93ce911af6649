#!/usr/bin/env bash
# The checks CI runs before the tests: ruff (lint and format) and mypy over kagura/.
# Usage: bash scripts/lint.sh        (after `bash scripts/setup.sh dev`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check kagura tests bench
.venv/bin/ruff format --check kagura tests bench
.venv/bin/mypy
