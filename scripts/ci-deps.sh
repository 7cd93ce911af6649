#!/usr/bin/env bash
# System packages the test suite needs beyond Python: a Java runtime for the Spark tests.
# Installs Debian's headless JRE when `java` is missing (needs root and the Debian registry).
set -euo pipefail
if ! command -v java >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "ci-deps: installing default-jre-headless (Java for the Spark tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
  else
    echo "ci-deps: no java and no root apt-get: the Spark tests will be skipped" >&2
  fi
fi
