"""Shared driver for side-by-side SQL benchmarks: runs queries through psql against the bench
cluster (PGHOST/PGPORT from target/clusters/bench.env), times each several times, reports
medians and ratios, and describes the machine so results in docs/benchmarks/ are comparable.
"""
import datetime
import os
import platform
import re
import statistics
import subprocess

TIME_RE = re.compile(r"^Time: ([0-9.]+) ms", re.M)


def psql(sql, db="skycat_bench", timing=False):
    cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    script = ("\\timing on\n" if timing else "") + sql
    r = subprocess.run(cmd, input=script, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"psql failed:\n{sql}\n{r.stderr}")
    return r.stdout


def time_query(sql, runs=5, settings="", db="skycat_bench"):
    """Median wall time (ms) of `sql` over `runs` runs after one warm-up, as measured by psql."""
    script = settings + "\n" + "\n".join([sql.rstrip().rstrip(";") + " \\g /dev/null"] * (runs + 1)) + "\n"
    out = psql(script, db=db, timing=True)
    times = [float(t) for t in TIME_RE.findall(out)]
    assert len(times) >= runs + 1, out
    times = times[-(runs + 1):][1:]  # drop the warm-up
    return statistics.median(times), times


def time_once(sql, db="skycat_bench"):
    """Wall time (ms) of one run of `sql`, as measured by psql."""
    times = TIME_RE.findall(psql(sql, db=db, timing=True))
    assert times, sql
    return float(times[-1])


def machine():
    def sh(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    pg = psql("SELECT version();", db="postgres").strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "kernel": platform.release(),
        "postgres": pg,
        "commit": sh("git rev-parse --short HEAD"),
    }


def machine_md(m):
    return "\n".join(f"- {k}: {v}" for k, v in m.items())
