"""Baseline for bench/inbox.ts: Python's poplib retrieving every message over POP3S, one RETR
at a time (poplib has no pipelining). Prints JSON: messages, bytes, seconds."""
import json
import poplib
import ssl
import sys
import time

host, port, user, password, cafile = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile)
started = time.perf_counter()
box = poplib.POP3_SSL(host, int(port), context=context, timeout=60)
box.user(user)
box.pass_(password)
count, _ = box.stat()
total = 0
for n in range(1, count + 1):
    _, lines, _ = box.retr(n)
    total += sum(len(line) + 2 for line in lines)
box.quit()
print(json.dumps({"messages": count, "bytes": total, "seconds": time.perf_counter() - started}))
