#!/usr/bin/env bash
# Smoke test of `npm start`: starts it on its own ports, waits for GET /health to report every
# local part up, stops it with Ctrl-C (SIGINT) and checks that no Java process is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

export PORT="${PORT:-3300}"
export INBOUND_SMTP_PORT="${INBOUND_SMTP_PORT:-2625}"
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

# Push intake end to end: a push box, one email to its receiving address over SMTP, then the box's mail.
grep -q "Inbound SMTP smtp://127.0.0.1:$INBOUND_SMTP_PORT" "$log" || { echo "no Inbound SMTP line:"; cat "$log"; exit 1; }
api="http://127.0.0.1:$PORT"
admin='Authorization: Bearer dev:studio-1:admin-1:admins'
curl -fsS -X POST "$api/email-boxes" -H "$admin" -H 'content-type: application/json' -d '{
  "id": "smoke-push", "description": "Smoke push", "intake": "push",
  "connection": { "type": "pop3", "server": "pop.example.com", "emailAddress": "fwd@lumen.test",
                  "userName": "fwd@lumen.test", "ssl": true } }' >/dev/null
printf 'From: Pia <pia@client.test>\r\nTo: fwd@lumen.test\r\nSubject: Smoke push\r\nMessage-ID: <smoke-push@client.test>\r\n\r\nHello\r\n' \
  | curl -fsS "smtp://127.0.0.1:$INBOUND_SMTP_PORT" --mail-from pia@client.test \
      --mail-rcpt smoke-push.studio-1@inbound.studio-mail.localhost -T -
pushed=""
for _ in $(seq 1 20); do
  if curl -fsS "$api/email-boxes/smoke-push/messages?state=imported" -H "$admin" | grep -q '"subject":"Smoke push"'; then
    pushed=yes; break
  fi
  sleep 0.5
done
[ -n "$pushed" ] || { echo "the pushed email did not reach the box:"; cat "$log"; exit 1; }
echo "push intake: an email sent to the inbound SMTP server is on the box"

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
echo "npm start smoke test passed: served /health, imported a pushed email, stopped cleanly, no orphan Java process."
