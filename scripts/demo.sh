#!/usr/bin/env bash
# skyrun's main job on the embedded default: a server on SQLite, a process worker,
# and the example weather flow deployed, run through the worker, and inspected.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
root=$(pwd)
export PATH="$root/.venv/bin:$PATH"
export SKYRUN_HOME="${SKYRUN_HOME:-$root/.skyrun-demo}"
port="${SKYRUN_DEMO_PORT:-4200}"
export SKYRUN_API_URL="http://127.0.0.1:$port/api"
mkdir -p "$SKYRUN_HOME"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting the server on port $port (SQLite at $SKYRUN_HOME/skyrun.db)"
skyrun server start --port "$port" >"$SKYRUN_HOME/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  if python -c "import httpx,sys; sys.exit(httpx.get('$SKYRUN_API_URL/health').status_code != 200)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

echo "== a process work pool and a worker"
skyrun work-pool inspect demo-pool >/dev/null 2>&1 || skyrun work-pool create demo-pool --type process
skyrun worker start --pool demo-pool --limit 4 >"$SKYRUN_HOME/worker.log" 2>&1 &
pids+=($!)

echo "== deploying examples/weather.py:weather_report"
(cd examples && python -c "from weather import weather_report; weather_report.deploy(name='demo', work_pool_name='demo-pool')")

echo "== running it through the worker"
skyrun deployment run weather-report/demo --param 'cities=["Lisbon","Oslo","Tokyo"]' --watch

echo "== the newest run, its artifact"
skyrun flow-run ls --limit 3
skyrun artifact inspect weather-report
echo "demo finished: server and worker logs are in $SKYRUN_HOME"
