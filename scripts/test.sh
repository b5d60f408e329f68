#!/usr/bin/env bash
# Install everything into .venv, start PostgreSQL and RabbitMQ if needed, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

# tests/test_docker.py validates the compose file with Debian's docker-compose; best effort.
if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 \
    || echo "test.sh: docker-compose not installed; the compose validation test will be skipped"
fi

bash scripts/venv.sh dev

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
