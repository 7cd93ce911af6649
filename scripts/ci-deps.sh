#!/usr/bin/env bash
# System packages the test suite needs beyond Python: a Java runtime for the Spark tests and
# a headless browser for the HTML report's test. Installs what is missing from Debian's
# registry (needs root and apt-get); without them those tests are skipped, saying why.
set -euo pipefail
missing=()
if ! command -v java >/dev/null 2>&1; then
  missing+=(default-jre-headless)  # Java for the Spark tests
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1 && [ -z "${KAGURA_CHROMIUM:-}" ]; then
  missing+=(chromium fonts-dejavu-core)  # headless Chromium (and a font) for the report test
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "ci-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "ci-deps: missing ${missing[*]} and no root apt-get: the Spark and browser tests that need them will be skipped" >&2
  fi
fi
