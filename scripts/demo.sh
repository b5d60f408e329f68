#!/usr/bin/env bash
# Install Switchboard into .venv and replay the bundled demo day on the embedded SQLite database.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
exec .venv/bin/switchboard demo "$@"
