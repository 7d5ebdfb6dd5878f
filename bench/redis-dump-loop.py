#!/usr/bin/env python3
"""The "plain DUMP loop" a user would write: SCAN every key of db 0, DUMP + PTTL each (pipelined
per SCAN page), and write `RESTORE key ttl payload REPLACE` as a RESP stream on stdout (what
`redis-cli --pipe` replays). Standard library only, one connection.

Usage: python3 bench/redis-dump-loop.py PORT [DB] | zstd -3 | tee f | sha256sum
"""
import socket
import sys

port = int(sys.argv[1])
db = int(sys.argv[2]) if len(sys.argv) > 2 else 0
sock = socket.create_connection(("127.0.0.1", port))
rf = sock.makefile("rb", buffering=1 << 20)
out = sys.stdout.buffer


def enc(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def reply():
    line = rf.readline()
    t, rest = line[:1], line[1:-2]
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = rf.read(n + 2)
        return data[:-2]
    if t == b":":
        return int(rest)
    if t == b"+":
        return rest
    if t == b"*":
        return [reply() for _ in range(int(rest))]
    if t == b"-":
        raise RuntimeError(rest.decode())
    raise RuntimeError("bad reply %r" % line)


sock.sendall(enc("SELECT", db))
reply()
out.write(enc("SELECT", db))
cursor = b"0"
skipped = 0
while True:
    sock.sendall(enc("SCAN", cursor, "COUNT", 1000))
    cursor, keys = reply()
    if keys:
        sock.sendall(b"".join(enc("DUMP", k) + enc("PTTL", k) for k in keys))
        chunk = []
        for k in keys:
            payload, ttl = reply(), reply()
            if payload is None or ttl == -2:
                skipped += 1
                continue
            chunk.append(enc("RESTORE", k, max(ttl, 0), payload, "REPLACE"))
        out.write(b"".join(chunk))
    if cursor == b"0":
        break
out.flush()
if skipped:
    print("skipped %d keys that expired meanwhile" % skipped, file=sys.stderr)
