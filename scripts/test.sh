#!/usr/bin/env bash
# Run the whole test suite (unit, integration on SQLite and PostgreSQL, acceptance).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/pytest -q -n 2 --dist loadfile --durations=25 "$@"
