#!/bin/bash
# `drtool schedule run` idle: CPU time and RSS over 60 s with the shipped schedules (nothing
# fires), file:// storage, optionally with a Prometheus-like scrape of /metrics and /healthz
# every 15 s.  Usage: bench/scheduler_idle.sh [--scrape]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PORT=19187
printf 'storage: {url: "file://%s/data"}\nschedule: {dir: %s/schedules}\nmetrics: {listen: "127.0.0.1:%s"}\n' \
    "$WORK" "$ROOT" "$PORT" > "$WORK/drtool.yaml"
"$ROOT/.venv/bin/python" -m drtool --config "$WORK/drtool.yaml" --log-format json schedule run 2> "$WORK/log" &
PID=$!
sleep 5
TCK=$(getconf CLK_TCK)
read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
if [[ "${1:-}" == "--scrape" ]]; then
    for _ in 1 2 3 4; do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"
        curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"
        sleep 15
    done
else
    sleep 60
fi
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
THREADS=$(awk '/Threads/ {print $2}' "/proc/$PID/status")
TICKS=$(( (U1 + S1) - (U0 + S0) ))
echo "cpu_ms_in_60s=$(( TICKS * 1000 / TCK )) (clock tick $(( 1000 / TCK )) ms) rss_kib=$RSS peak_rss_kib=$HWM threads=$THREADS"
kill -TERM "$PID"
wait "$PID"
echo "exit=$?"
