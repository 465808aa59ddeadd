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

server_log="$SKYRUN_HOME/server.log"
server_wait_seconds=60
healthy() {
  python -c "import httpx,sys; sys.exit(httpx.get('$SKYRUN_API_URL/health', timeout=2).status_code != 200)" 2>/dev/null
}
server_failed() {
  echo "demo: $1; the end of $server_log:" >&2
  tail -n 40 "$server_log" >&2
  exit 1
}

# Otherwise the demo would talk to whatever answers there, not to the server it starts.
if healthy; then
  echo "demo: a server already answers at $SKYRUN_API_URL; stop it or set SKYRUN_DEMO_PORT" >&2
  exit 1
fi
echo "== starting the server on port $port (SQLite at $SKYRUN_HOME/skyrun.db)"
skyrun server start --port "$port" >"$server_log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
deadline=$((SECONDS + server_wait_seconds))
until healthy; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    server_failed "the server exited before it answered $SKYRUN_API_URL/health"
  fi
  if ((SECONDS >= deadline)); then
    server_failed "the server did not answer $SKYRUN_API_URL/health within ${server_wait_seconds}s"
  fi
  sleep 0.5
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
