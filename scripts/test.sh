#!/usr/bin/env bash
# Install everything into .venv, start PostgreSQL and RabbitMQ if needed, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

# Debian tools some tests use, installed when missing; best effort (those tests skip without):
# docker-compose (tests/test_docker.py validates the compose files), promtool from prometheus
# (tests/test_monitoring.py checks and unit-tests the alerts), chromium (tests/web/test_browser.py).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
for tool in docker-compose:docker-compose promtool:prometheus chromium:chromium; do
  command -v "${tool%%:*}" >/dev/null 2>&1 && continue
  command -v apt-get >/dev/null 2>&1 || break
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${tool#*:}" >/dev/null 2>&1 \
    || echo "test.sh: ${tool#*:} not installed; the tests that need ${tool%%:*} will be skipped"
done

bash scripts/venv.sh dev

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
