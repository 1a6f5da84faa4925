#!/usr/bin/env bash
# `make dev`: the bundled e-Stat emulator + `dagster dev` (UI and daemon) on 127.0.0.1.
#
# DAGSTER_HOME is $ESTAT_LAKE_HOME/dagster with the packaged instance config (the layout the CLI
# uses, so the UI shows the CLI's runs too). Nothing here calls e-Stat: `estat-lake register`
# only adds the declared datasets as partitions. With ESTAT_API_URL set, no emulator is started.
# Ctrl-C (or SIGTERM) stops everything: `dagster dev` runs in its own process group (job control)
# and the whole group is stopped, then the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
export ESTAT_LAKE_HOME="${ESTAT_LAKE_HOME:-$PWD/.estat-lake}"
export DAGSTER_HOME="$ESTAT_LAKE_HOME/dagster"
EMULATOR_PORT="${ESTAT_EMULATOR_PORT:-18800}"
DEV_PORT="${DEV_PORT:-3000}"
EMU=""
DEV=""

stop() {
  trap - EXIT INT TERM
  if [ -n "$DEV" ]; then
    kill -TERM -- "-$DEV" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 -- "-$DEV" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$DEV" 2>/dev/null || true
  fi
  if [ -n "$EMU" ]; then
    kill -TERM "$EMU" 2>/dev/null || true
    wait "$EMU" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

# The lake's Dagster home with the packaged dagster.yaml, whatever the working directory.
"$BIN/python" -c 'from estat_assets.runner import open_instance
from estat_assets.settings import Settings
open_instance(Settings.from_env()).dispose()'

if [ -z "${ESTAT_API_URL:-}" ]; then
  "$BIN/estat-lake" emulator --port "$EMULATOR_PORT" &
  EMU=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$EMULATOR_PORT/_emulator/health" >/dev/null && break
    kill -0 "$EMU" 2>/dev/null || { echo "the emulator did not start" >&2; exit 2; }
    sleep 0.2
  done
  export ESTAT_API_URL="http://127.0.0.1:$EMULATOR_PORT/rest/3.0/app/json"
fi

"$BIN/estat-lake" register
echo "Dagster UI: http://127.0.0.1:$DEV_PORT  (Ctrl-C stops the UI, the daemon and the emulator)"
set -m  # job control: `dagster dev` gets its own process group, with SIGINT not ignored
"$BIN/dagster" dev -w workspace.yaml -h 127.0.0.1 -p "$DEV_PORT" &
DEV=$!
set +m
wait "$DEV"
