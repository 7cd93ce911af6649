#!/usr/bin/env bash
# Installs kagura into .venv, records real agent runs offline (litellm mock
# responses through the real @agent path), then shows the monitor.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
kagura demo "$@"
kagura monitor --once
kagura monitor stats
kagura monitor cost
