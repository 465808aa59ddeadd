#!/usr/bin/env bash
# skyrun's main job on the embedded default, as the Cloud Run guide's journey: a server on
# SQLite, the local Cloud Run emulator checking a service-account key, a gcp-credentials
# block holding that key, a cloud-run work pool pointed at the emulator, a cloud-run worker,
# and the example weather flow deployed, run as a Cloud Run job, and inspected.
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

# wait_for_line WHAT TEXT LOG: until LOG holds TEXT (WHAT has started), or fail showing LOG.
wait_for_line() {
  local deadline=$((SECONDS + server_wait_seconds))
  until grep -q "$2" "$3" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "demo: the $1 did not start; the end of $3:" >&2
      tail -n 20 "$3" >&2
      exit 1
    fi
    sleep 0.2
  done
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

emulator_port="${SKYRUN_DEMO_EMULATOR_PORT:-$((port + 1))}"
emulator="http://127.0.0.1:$emulator_port"
key_file="$SKYRUN_HOME/demo-service-account.json"
echo "== a service-account key and the Cloud Run emulator at $emulator (it checks that key)"
# A real RSA key, written like Google's key files; its token_uri is the emulator's.
python - "$key_file" "$emulator/token" <<'PY'
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
info = {"type": "service_account", "project_id": "skyrun-demo", "private_key_id": "demo",
        "private_key": pem, "client_email": "runner@skyrun-demo.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": sys.argv[2]}
with open(sys.argv[1], "w") as out:
    json.dump(info, out)
PY
chmod 600 "$key_file"
skyrun cloud-run emulator --port "$emulator_port" --service-account-key "$key_file" \
  >"$SKYRUN_HOME/emulator.log" 2>&1 &
pids+=($!)
wait_for_line emulator "listening on" "$SKYRUN_HOME/emulator.log"

echo "== a gcp-credentials block and a cloud-run work pool"
skyrun block inspect gcp-credentials/demo-creds >/dev/null 2>&1 && skyrun block delete gcp-credentials/demo-creds >/dev/null
skyrun block create gcp-credentials demo-creds --field project=skyrun-demo \
  --field "service_account_info=@$key_file"
skyrun work-pool inspect demo-cloud-run >/dev/null 2>&1 || skyrun work-pool create demo-cloud-run --type cloud-run
skyrun work-pool update demo-cloud-run --set region=us-central1 \
  --set credentials=gcp-credentials/demo-creds \
  --set service_account_name=runner@skyrun-demo.iam.gserviceaccount.com \
  --set "api_endpoint=$emulator" --set image=us-docker.pkg.dev/skyrun-demo/flows/weather:demo

echo "== a cloud-run worker"
skyrun worker start --pool demo-cloud-run --type cloud-run >"$SKYRUN_HOME/worker.log" 2>&1 &
pids+=($!)
wait_for_line worker "polling work pool" "$SKYRUN_HOME/worker.log"

echo "== deploying examples/weather.py:weather_report"
(cd examples && skyrun deploy weather.py:weather_report --name demo --pool demo-cloud-run)

echo "== running it as a Cloud Run job"
skyrun deployment run weather-report/demo --param 'cities=["Lisbon","Oslo","Tokyo"]' --watch

echo "== the newest run, its artifact"
skyrun flow-run ls --limit 3
skyrun artifact inspect weather-report
echo "demo finished: server, emulator and worker logs are in $SKYRUN_HOME"
