#!/usr/bin/env python3
"""Realistic Redis benchmark data as a RESP command stream for `redis-cli --pipe`.

Usage: python3 bench/gen-redis.py SCALE | redis-cli -p PORT --pipe

Scale 1 = 1,000,000 keys of mixed types (strings of varied length incl. JSON-ish session blobs and
integer counters, hashes, lists, sets, sorted sets, a few streams), about 10% with a TTL, plus the
marker key `exporter_bench:meta` that bench/run checks to skip regeneration.
"""
import random
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(1_000_000 * scale))
rnd = random.Random(42)
out = sys.stdout.buffer
buf = []
size = 0


def cmd(*args):
    global size
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    chunk = b"".join(parts)
    buf.append(chunk)
    size += len(chunk)
    if size > 1 << 20:
        flush()


def flush():
    global size
    out.write(b"".join(buf))
    buf.clear()
    size = 0


WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega cart item search account checkout order invoice").split()
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Macintosh)", "curl/8.5.0"]


def hexs(k):
    return "%0*x" % (k, rnd.getrandbits(4 * k))


def text(lo, hi):
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))


for i in range(n):
    r = i % 100
    ttl = rnd.random() < 0.10
    if r < 40:  # session blobs: JSON-ish strings of varied length
        key = "session:%d" % i
        val = ('{"user":%d,"ua":"%s","token":"%s","cart":[%s],"note":"%s"}' % (
            rnd.randint(1, 500000), rnd.choice(AGENTS), hexs(32),
            ",".join(str(rnd.randint(1, 99999)) for _ in range(rnd.randint(0, 12))), text(0, 30)))
        if ttl:
            cmd("SET", key, val, "PX", rnd.randint(3_600_000, 86_400_000))
        else:
            cmd("SET", key, val)
    elif r < 55:  # cache entries and counters
        key = "cache:%d" % i
        if r < 48:
            cmd("SET", key, hexs(rnd.randint(8, 64)) + text(1, 8))
        else:
            cmd("SET", key, rnd.randint(0, 10_000_000))
        if ttl:
            cmd("PEXPIRE", key, rnd.randint(3_600_000, 86_400_000))
    elif r < 72:  # user hashes
        key = "user:%d" % i
        cmd("HSET", key, "name", text(2, 3).title(), "email", "user%d@example.com" % i,
            "balance", "%.2f" % (rnd.random() * 100000), "created", 1_600_000_000 + rnd.randint(0, 10**8),
            "country", rnd.choice(["DE", "FR", "US", "GB", "NL"]), "token", hexs(24),
            *[x for j in range(rnd.randint(0, 8)) for x in ("pref:%d" % j, text(1, 3))])
        if ttl:
            cmd("PEXPIRE", key, rnd.randint(3_600_000, 86_400_000))
    elif r < 82:  # queues
        cmd("RPUSH", "queue:%d" % i, *['{"job":%d,"arg":"%s"}' % (rnd.randint(1, 10**6), hexs(12))
                                       for _ in range(rnd.randint(3, 20))])
    elif r < 91:  # tag sets
        cmd("SADD", "tags:%d" % i, *{rnd.choice(WORDS) + "-" + str(rnd.randint(0, 50))
                                     for _ in range(rnd.randint(3, 15))})
    elif r < 99:  # leaderboards
        args = []
        for j in range(rnd.randint(3, 25)):
            args += ["%.3f" % (rnd.random() * 10000), "player:%d" % rnd.randint(1, 10**6)]
        cmd("ZADD", "board:%d" % i, *args)
    else:  # small streams
        key = "stream:%d" % i
        for j in range(rnd.randint(2, 10)):
            cmd("XADD", key, "*", "event", rnd.choice(WORDS), "value", rnd.randint(0, 10**6))

cmd("SET", "exporter_bench:meta", "scale=%g keys=%d" % (scale, n + 1))
flush()
