#!/usr/bin/env python3
"""Summarize bench/run measurements: median/min/max wall, peak RSS, output size, ratios to the
baseline of each group, and the targets of issues 7 and 3.

Usage: python3 bench/summarize.py results.tsv [markdown-out]
TSV columns: group contender run wall_s rss_kib user_s sys_s out_bytes load1 [idle_before_pct
machine_cpu_s]. user_s + sys_s is the contender's own CPU (its processes); machine_cpu_s is every
process on the machine during the measurement (the database server included, and anyone else's).
"""
import statistics
import sys
from collections import OrderedDict

BASELINE = {
    "pg": "pg_dump | zstd -3 | tee | sha256sum",
    "verify": "sha256sum && zstd -t",
    "mysql": "mariadb-dump | zstd -3 | tee | sha256sum",
    "redis": "redis-cli --rdb - | zstd -3 | tee | sha256sum",
    "restore": "zstd -dc | psql (new database)",
    "mysql-restore": "zstd -dc | mariadb (new schema)",
}
TITLE = {
    "pg": "PostgreSQL dump",
    "verify": "Verify (the exporter's PostgreSQL archive)",
    "mysql": "MariaDB dump",
    "redis": "Redis dump",
    "restore": "Restore (the exporter's PostgreSQL archive)",
    "mysql-restore": "Restore (the exporter's MariaDB archive)",
}

rows = []
with open(sys.argv[1]) as f:
    for line in f:
        if line.startswith("#") or not line.strip():
            continue
        f_ = line.rstrip("\n").split("\t")
        g, c, r, wall, rss, us, ss, out, load = f_[:9]
        idle, machine = (f_[9], f_[10]) if len(f_) >= 11 else ("nan", "nan")
        rows.append((g, c, int(r), float(wall), int(rss), float(us), float(ss),
                     int(out) if out not in ("", "-") else None, float(load), float(idle), float(machine)))

groups = OrderedDict()
for row in rows:
    groups.setdefault(row[0], OrderedDict()).setdefault(row[1], []).append(row)

MiB = 1024 * 1024
stats = {}
for g, cs in groups.items():
    for c, rs in cs.items():
        walls = [r[3] for r in rs]
        outs = [r[7] for r in rs if r[7] is not None]
        stats[(g, c)] = dict(
            n=len(rs), med=statistics.median(walls), min=min(walls), max=max(walls),
            rss=max(r[4] for r in rs) / 1024, cpu=statistics.median(r[5] + r[6] for r in rs),
            out=statistics.median(outs) / MiB if outs else None, load=max(r[8] for r in rs),
            idle=min(r[9] for r in rs), machine=statistics.median(r[10] for r in rs))


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"


md = []
plain = []
for g, cs in groups.items():
    base = stats.get((g, BASELINE.get(g)))
    md.append("### %s\n" % TITLE.get(g, g))
    md.append("| contender | median wall s | min–max s | own CPU s | machine CPU s | peak RSS MiB | output MiB "
              "| wall × baseline | RSS × baseline | size × baseline | min idle before |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    plain.append("== %s (baseline: %s) ==" % (TITLE.get(g, g), BASELINE.get(g)))
    plain.append("%-48s %7s %13s %5s %7s %7s %7s %5s %5s %5s %5s" % (
        "contender", "wall s", "min-max", "CPU", "machine", "RSS MiB", "out MiB", "wall×", "RSS×", "size×", "idle%"))
    for c in cs:
        s = stats[(g, c)]
        out = "%.1f" % s["out"] if s["out"] is not None else "-"
        wr = ratio(s["med"], base["med"]) if base else "-"
        rr = ratio(s["rss"], base["rss"]) if base else "-"
        sr = ratio(s["out"], base["out"]) if base and base["out"] else "-"
        mark = " (baseline)" if c == BASELINE.get(g) else ""
        md.append("| `%s`%s | %.2f | %.2f–%.2f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %.0f%% |" % (
            c.replace("|", "\\|"), mark, s["med"], s["min"], s["max"], s["cpu"], s["machine"], s["rss"], out, wr, rr, sr,
            s["idle"]))
        plain.append("%-48s %7.2f %6.2f-%-6.2f %5.1f %7.1f %7.1f %7s %5s %5s %5s %5.0f" % (
            c[:48], s["med"], s["min"], s["max"], s["cpu"], s["machine"], s["rss"], out, wr, rr, sr, s["idle"]))
    md.append("")
    plain.append("")

# Targets (issue 7 for PostgreSQL and verify, issue 3 for MariaDB; issue 4 sets no numeric target).
targets = []


def target(name, ok, detail):
    targets.append((name, "met" if ok else "MISSED", detail))


ex, pipe, raw = (stats.get(("pg", k)) for k in
                 ("exporter dump", BASELINE["pg"], "raw COPY TO STDOUT > /dev/null (sum over tables)"))
if ex and pipe:
    target("PG: wall ≤ 0.8 × pg_dump|zstd -3|sha256sum", ex["med"] <= 0.8 * pipe["med"],
           "%.2f s vs %.2f s = %.2f×" % (ex["med"], pipe["med"], ex["med"] / pipe["med"]))
    target("PG: same or better compressed size", ex["out"] <= pipe["out"],
           "%.1f MiB vs %.1f MiB = %.3f×" % (ex["out"], pipe["out"], ex["out"] / pipe["out"]))
if ex and raw:
    target("PG: within 15% of the raw COPY rate", ex["med"] <= 1.15 * raw["med"],
           "%.2f s vs %.2f s raw = %.2f×" % (ex["med"], raw["med"], ex["med"] / raw["med"]))
if ex:
    target("PG: peak RSS < 64 MiB", ex["rss"] < 64, "%.1f MiB" % ex["rss"])
vd, vb = stats.get(("verify", "exporter verify --level decompress")), stats.get(("verify", BASELINE["verify"]))
if vd and vb:
    target("verify decompress ≥ 1.5× faster than sha256sum + zstd -t", vb["med"] >= 1.5 * vd["med"],
           "%.2f s vs %.2f s = %.2f× faster" % (vd["med"], vb["med"], vb["med"] / vd["med"]))
vr = stats.get(("restore", "exporter verify --level restore"))
if vr and ex:
    target("PG: verify --level restore ≤ 2.0 × the dump (issue 17)", vr["med"] <= 2.0 * ex["med"],
           "%.2f s vs %.2f s = %.2f×" % (vr["med"], ex["med"], vr["med"] / ex["med"]))
rx, rp, rj = (stats.get(("restore", k)) for k in
              ("exporter restore (new database)", BASELINE["restore"],
               "pg_restore -j2 of a directory dump (new database)"))
if rx and rp:
    target("PG restore: wall ≤ 0.75 × zstd -dc | psql (issue 17)", rx["med"] <= 0.75 * rp["med"],
           "%.2f s vs %.2f s = %.2f×" % (rx["med"], rp["med"], rx["med"] / rp["med"]))
    target("PG restore: peak RSS < 64 MiB", rx["rss"] < 64, "%.1f MiB" % rx["rss"])
if rx and rj:
    target("PG restore: wall ≤ 1.0 × pg_restore -j2 (issue 17)", rx["med"] <= rj["med"],
           "%.2f s vs %.2f s = %.2f×" % (rx["med"], rj["med"], rx["med"] / rj["med"]))
qx, qp = (stats.get(("mysql-restore", k)) for k in
          ("exporter restore (new schema)", "zstd -dc | mariadb (new schema)"))
if qx and qp:
    target("MariaDB restore: wall ≤ 0.8 × zstd -dc | mariadb (issue 17)", qx["med"] <= 0.8 * qp["med"],
           "%.2f s vs %.2f s = %.2f×" % (qx["med"], qp["med"], qx["med"] / qp["med"]))
    target("MariaDB restore: peak RSS < 64 MiB", qx["rss"] < 64, "%.1f MiB" % qx["rss"])
zx, zl, zr = (stats.get(("redis", k)) for k in
              ("exporter dump (resp)", "SCAN+DUMP+PTTL loop (python) | zstd -3 | tee | sha256sum",
               BASELINE["redis"]))
if zx and zl:
    target("Redis RESP dump: wall ≤ 0.7 × the SCAN+DUMP+PTTL loop (issue 17)", zx["med"] <= 0.7 * zl["med"],
           "%.2f s vs %.2f s = %.2f×" % (zx["med"], zl["med"], zx["med"] / zl["med"]))
if zx and zr:
    target("Redis RESP dump: wall ≤ 1.5 × redis-cli --rdb | zstd | sha256sum (issue 17)",
           zx["med"] <= 1.5 * zr["med"],
           "%.2f s vs %.2f s = %.2f×" % (zx["med"], zr["med"], zx["med"] / zr["med"]))
mx, mp = stats.get(("mysql", "exporter dump")), stats.get(("mysql", BASELINE["mysql"]))
if mx and mp:
    target("MariaDB: wall ≤ 0.75 × mariadb-dump|zstd -3|sha256sum", mx["med"] <= 0.75 * mp["med"],
           "%.2f s vs %.2f s = %.2f×" % (mx["med"], mp["med"], mx["med"] / mp["med"]))
    target("MariaDB: peak RSS < 64 MiB", mx["rss"] < 64, "%.1f MiB" % mx["rss"])

if targets:
    md.append("### Targets\n")
    md.append("| target | result | figures |")
    md.append("|---|---|---|")
    plain.append("== targets ==")
    for name, res, detail in targets:
        md.append("| %s | **%s** | %s |" % (name.replace("|", "\\|"), res, detail))
        plain.append("%-62s %-7s %s" % (name, res, detail))
    md.append("")

print("\n".join(plain))
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(md) + "\n")
