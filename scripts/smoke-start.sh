#!/usr/bin/env bash
# Smoke test of `npm start`: starts it on its own ports, waits for GET /health to report every
# local part up, stops it with Ctrl-C (SIGINT) and checks that no Java process is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

export PORT="${PORT:-3300}"
home=$(mktemp -d)
export STUDIO_MAIL_HOME="$home/.local"
log="$home/start.log"

setsid npm start >"$log" 2>&1 &
pid=$!
cleanup() { kill -INT -"$pid" 2>/dev/null || true; }
trap cleanup EXIT

ok=""
for _ in $(seq 1 120); do
  if body=$(curl -fsS "http://127.0.0.1:$PORT/health" 2>/dev/null); then ok="$body"; break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "npm start exited early:"; cat "$log"; exit 1; fi
  sleep 1
done
if [ -z "$ok" ]; then echo "npm start did not answer GET /health within 120 s:"; cat "$log"; exit 1; fi
echo "GET /health -> $ok"
echo "$ok" | grep -q '"status":"ok"' || { echo "a local part is down"; exit 1; }

# Ctrl-C reaches the whole foreground process group; do the same.
kill -INT -"$pid"
for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
trap - EXIT
if kill -0 "$pid" 2>/dev/null; then echo "npm start did not stop on SIGINT"; kill -KILL -"$pid"; exit 1; fi
if pgrep -f "LoopbackDynamoDB.java.*$STUDIO_MAIL_HOME" >/dev/null; then
  echo "an orphan DynamoDB Local process was left behind"; exit 1
fi
grep -q 'stopped.' "$log" || { echo "no clean stop in the log:"; cat "$log"; exit 1; }
rm -rf "$home"
echo "npm start smoke test passed: served /health, stopped cleanly, no orphan Java process."
