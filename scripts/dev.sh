#!/usr/bin/env bash
# `make dev`: the bundled e-Stat emulator + `dagster dev` on 127.0.0.1, stopped together.
set -euo pipefail
BIN=.venv/bin
PORT="${ESTAT_EMULATOR_PORT:-18800}"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
"$BIN/estat-lake" emulator --port "$PORT" &
EMU=$!
trap 'kill "$EMU" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$PORT/_emulator/health" >/dev/null && break
  sleep 0.2
done
export ESTAT_API_URL="http://127.0.0.1:$PORT/rest/3.0/app/json"
"$BIN/estat-lake" register
echo "Dagster UI: http://127.0.0.1:${DEV_PORT:-3000}  (Ctrl-C stops the UI and the emulator)"
"$BIN/dagster" dev -w workspace.yaml -h 127.0.0.1 -p "${DEV_PORT:-3000}"
