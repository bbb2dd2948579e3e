"""Benchmark ``cloudshift db copy`` against pgcopydb, pg_dump -Fd + pg_restore, pg_dump | psql,
and two floors (plain parallel COPY pipes, data only; the same with binary COPY and the indexes
built after, psql only), on pgbench data (optionally with its accounts table split in N).

Two local PostgreSQL servers are started (as in the test fixtures); each tool copies the same
source database into a fresh target database, in turn, for several rounds, with the order
rotated each round. Reported: median seconds per tool, the median of per-round ratios
cloudshift / peer, and peak RSS (``/usr/bin/time -v``: the largest single process of the run).
Then ``db verify`` time, and the replication lag observed while pgbench writes to the source
during ``db copy --follow``, and the cutover's write freeze.

Usage: .venv/bin/python bench/db/bench.py [--scale 20] [--rounds 3] [--split N] [--copy-only]
       [--out bench/db/results.md]
Needs: PostgreSQL 15 server binaries, pgbench, pg_dump/psql, pgcopydb (apt-get install -y
pgcopydb), GNU time (/usr/bin/time).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from servers.postgres import PASSWORD, PgServer, _bindir, _start, _stop  # type: ignore[import-not-found]  # noqa: E402

ENTRY = "from cloudshift.cli import main; main()"
DB = "bench"
FLOOR = "floor: parallel COPY pipes (data only)"
FLOOR_KEYS = "floor with keys: binary COPY (FREEZE) pipes, then pg_dump's post-data (no ANALYZE)"


def conninfo(server: PgServer, db: str = DB) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname={db}"


def admin(server: PgServer, query: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(query)


def admin_db(server: PgServer, query: str) -> None:
    with psycopg.connect(server.dsn(DB), autocommit=True) as conn:
        conn.execute(query)


def split_accounts(src: PgServer, n: int) -> None:
    """pgbench_accounts as ``n`` tables of equal key ranges, same columns and key."""
    with psycopg.connect(src.dsn(DB), autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
        assert rows is not None
        per = -(-int(rows[0]) // n)
        for k in range(1, n + 1):
            conn.execute(f"CREATE TABLE accounts_{k} (LIKE pgbench_accounts INCLUDING ALL)")
            conn.execute(f"INSERT INTO accounts_{k} SELECT * FROM pgbench_accounts "
                         f"WHERE aid > {(k - 1) * per} AND aid <= {k * per}")
        conn.execute("DROP TABLE pgbench_accounts")
        conn.execute("VACUUM ANALYZE")


def fresh_target(dst: PgServer) -> None:
    admin(dst, f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    admin(dst, f"CREATE DATABASE {DB}")


def timed(cmd: str, env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of a shell pipeline under GNU time."""
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", "bash", "-o", "pipefail", "-c", cmd],
                          env=env, capture_output=True, text=True, check=False)
    secs = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:80]}... failed: {proc.stderr[-800:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return secs, int(m.group(1)) if m else 0


def tools(src: PgServer, dst: PgServer, work: Path) -> dict[str, str]:
    py = sys.executable
    s, d = conninfo(src), conninfo(dst)
    su, du = src.dsn(DB), dst.dsn(DB)
    # Both floors: pre-data, then tables largest first, two psql pipes at a time (none of
    # our start-up, planning, journal or ANALYZE).
    tables = (f"psql -X -At -d '{s}' -c \"SELECT format('%I.%I', schemaname, relname) "
              "FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC\"")

    def floor_script(name: str, read: str, write: str, after: str = "") -> Path:
        path = work / name
        path.write_text(
            "set -euo pipefail\n"
            f"pg_dump --section=pre-data -d '{s}' | psql -X -q -d '{d}' >/dev/null\n"
            f"pipe() {{ psql -X -q -d '{s}' -c \"{read}\" | psql -X -q -d '{d}' {write}; }}\n"
            f"export -f pipe\n{tables} | xargs -P 2 -I{{}} bash -c 'pipe \"$@\"' _ {{}}\n"
            + after)
        return path

    floor = floor_script("floor.sh", "COPY $1 TO STDOUT", '-c "COPY $1 FROM STDIN"')
    # The fastest way we know to load and then index with stock tools: binary COPY into a
    # table emptied in the same transaction (FREEZE), then pg_dump's post-data as it is.
    keys = floor_script(
        "floor-keys.sh", "COPY $1 TO STDOUT (FORMAT binary)",
        '-c BEGIN -c "TRUNCATE $1" -c "COPY $1 FROM STDIN (FORMAT binary, FREEZE)" -c COMMIT',
        f"pg_dump --section=post-data -d '{s}' | "
        f"PGOPTIONS='-c maintenance_work_mem=256MB' psql -X -q -d '{d}' >/dev/null\n")
    return {
        "cloudshift db copy -j2": f"{py} -c '{ENTRY}' db copy '{su}' '{du}' -j 2 --force "
                                  f"--job-dir {work}/cs-job >/dev/null",
        "pgcopydb clone (2+2 jobs)": f"rm -rf {work}/pgcopydb && pgcopydb clone --source "
                                     f"'{su}' --target '{du}' --table-jobs 2 --index-jobs 2 "
                                     f"--dir {work}/pgcopydb >/dev/null 2>&1",
        "pg_dump -Fd -j2 + pg_restore -j2": f"rm -rf {work}/dump && pg_dump -Fd -j 2 -f "
                                            f"{work}/dump -d '{s}' && pg_restore -j 2 -d "
                                            f"'{d}' {work}/dump",
        "pg_dump | psql": f"pg_dump -d '{s}' | psql -X -q -d '{d}' >/dev/null",
        FLOOR: f"bash {floor}",
        FLOOR_KEYS: f"bash {keys}",
    }


def bench_copy(src: PgServer, dst: PgServer, rounds: int, work: Path
               ) -> dict[str, list[tuple[float, int]]]:
    env = {**os.environ, "PGPASSWORD": PASSWORD, "CLOUDSHIFT_HOME": str(work / "home")}
    runs = tools(src, dst, work)
    names = list(runs)
    out: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fresh_target(dst)
            if name.startswith("cloudshift"):
                shutil.rmtree(work / "cs-job", ignore_errors=True)
            secs, rss = timed(runs[name], env)
            out[name].append((secs, rss))
            print(f"round {r + 1}: {name}: {secs:.2f}s, {rss / 1024:.0f} MiB", flush=True)
    return out


def bench_verify_and_follow(src: PgServer, dst: PgServer, work: Path) -> dict[str, float]:
    env = {**os.environ, "PGPASSWORD": PASSWORD, "CLOUDSHIFT_HOME": str(work / "home")}
    py = sys.executable
    res: dict[str, float] = {}
    fresh_target(dst)
    shutil.rmtree(work / "cs-job", ignore_errors=True)
    timed(f"{py} -c '{ENTRY}' db copy '{src.dsn(DB)}' '{dst.dsn(DB)}' -j 2 "
          f"--job-dir {work}/cs-job >/dev/null", env)
    res["verify_s"], res["verify_rss_kib"] = timed(
        f"{py} -c '{ENTRY}' db verify '{src.dsn(DB)}' '{dst.dsn(DB)}' -j 2 >/dev/null", env)
    # --follow under a pgbench write load: lag sampled on the source every 0.5 s.
    # pgbench_history has no key; pgbench only inserts into it, but logical replication
    # wants a replica identity on every published table.
    admin_db(src, "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    fresh_target(dst)
    shutil.rmtree(work / "cs-job", ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run([py, "-c", ENTRY, "db", "copy", src.dsn(DB), dst.dsn(DB), "-j", "2",
                    "--follow", "--job-dir", str(work / "cs-job")], env=env, check=True,
                   capture_output=True)
    res["copy_follow_s"] = time.monotonic() - t0
    lags: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(src.dsn(DB), autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                    "FROM pg_replication_slots WHERE slot_name LIKE 'cloudshift%'").fetchone()
                if row and row[0] is not None:
                    lags.append(int(row[0]))
                time.sleep(0.5)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    pgb = subprocess.run(["pgbench", "-c", "2", "-j", "2", "-T", "15", "-n", conninfo(src)],
                         env=env, capture_output=True, text=True, check=True)
    m = re.search(r"tps = ([\d.]+)", pgb.stdout)
    res["pgbench_tps"] = float(m.group(1)) if m else 0.0
    stop.set()
    th.join()
    res["lag_median_bytes"] = statistics.median(lags) if lags else -1
    res["lag_max_bytes"] = max(lags) if lags else -1
    cut = subprocess.run([py, "-c", ENTRY, "db", "cutover", src.dsn(DB), dst.dsn(DB), "-j",
                          "2"], env=env, capture_output=True, text=True, check=True)
    m = re.search(r"write freeze on the source: ([\d.]+)s", cut.stdout)
    res["freeze_s"] = float(m.group(1)) if m else -1
    m = re.search(r"caught up ([\d.]+)s after the freeze.*verify took ([\d.]+)s", cut.stdout)
    if m:
        res["catch_up_s"], res["cutover_verify_s"] = float(m.group(1)), float(m.group(2))
    admin(src, f"ALTER DATABASE {DB} RESET default_transaction_read_only")
    return res


def md_cell(text: str) -> str:
    return text.replace("|", "\\|")   # a pipe inside Markdown table text


def report(scale: int, split: int, rounds: int, copy: dict[str, list[tuple[float, int]]],
           extra: dict[str, float]) -> str:
    cs_name = next(n for n in copy if n.startswith("cloudshift"))
    cs = copy[cs_name]
    data = f"pgbench scale {scale}" + (
        f", the accounts table split into {split} tables" if split > 1 else "")
    lines = [
        f"### PostgreSQL copy ({data}, {rounds} rounds, order rotated; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Two local PostgreSQL 15 servers on one 2-core machine (fsync off); each tool copies "
        "the same database into a fresh target. Ratio = median over rounds of cloudshift's "
        "time / the peer's time in the same round (below 1: cloudshift faster). Peak RSS is "
        "the largest single process (GNU time).",
        "",
        "| tool | median s | cloudshift / tool | peak RSS MiB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, runs in copy.items():
        med = statistics.median(s for s, _ in runs)
        ratio = statistics.median(c[0] / p[0] for c, p in zip(cs, runs, strict=True))
        rss = max(r for _, r in runs) / 1024
        cell = "-" if name == cs_name else f"{ratio:.2f}"
        lines.append(f"| {md_cell(name)} | {med:.2f} | {cell} | {rss:.0f} |")
    peers = [n for n in copy if n != cs_name and not n.startswith("floor")]
    fastest = min(peers, key=lambda n: statistics.median(s for s, _ in copy[n]))
    ratio = statistics.median(c[0] / p[0] for c, p in zip(cs, copy[fastest], strict=True))
    bound = statistics.median(k[0] / p[0] for k, p in zip(copy[FLOOR_KEYS], copy[fastest],
                                                            strict=True))
    lines += [
        "",
        f"Fastest peer: {md_cell(fastest)}; cloudshift / fastest peer = "
        f"{ratio:.2f} (target <= 0.80).",
        "",
        f"Floor with keys / fastest peer = {bound:.2f}: loading then indexing with psql alone, "
        "with none of cloudshift's start-up, planning, journal or ANALYZE.",
    ]
    if not extra:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"- `db verify -j2` of the copied database: {extra.get('verify_s', -1):.2f} s "
        f"(peak RSS {extra.get('verify_rss_kib', 0) / 1024:.0f} MiB).",
        f"- `db copy --follow -j2`: {extra.get('copy_follow_s', -1):.2f} s until caught up; then "
        f"pgbench (2 clients, 15 s, {extra.get('pgbench_tps', 0):.0f} tps) on the source: "
        f"replication lag median {extra.get('lag_median_bytes', -1) / 1024:.0f} KiB, max "
        f"{extra.get('lag_max_bytes', -1) / 1024:.0f} KiB (sampled every 0.5 s).",
        f"- `db cutover` after the load: write freeze {extra.get('freeze_s', -1):.2f} s "
        f"(catch-up {extra.get('catch_up_s', -1):.2f} s, verify "
        f"{extra.get('cutover_verify_s', -1):.2f} s).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--split", type=int, default=1,
                    help="split pgbench_accounts into this many tables (a many-table case)")
    ap.add_argument("--copy-only", action="store_true",
                    help="skip the db verify, --follow and cutover measurements")
    ap.add_argument("--out", default=str(ROOT / "bench" / "db" / "results.md"))
    args = ap.parse_args()
    bindir = _bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="cloudshift-bench-pg-"))
    os.chmod(root, 0o755)
    servers: list[PgServer] = []
    try:
        servers.append(_start("source", bindir, root, ["-c", "wal_level=logical"]))
        servers.append(_start("target", bindir, root, []))
        src, dst = servers
        admin(src, f"CREATE DATABASE {DB}")
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        print(f"pgbench -i -s {args.scale} ...", flush=True)
        subprocess.run(["pgbench", "-i", "-q", "-s", str(args.scale), conninfo(src)], env=env,
                       check=True, capture_output=True)
        if args.split > 1:
            split_accounts(src, args.split)
        work = root / "work"
        work.mkdir()
        copy = bench_copy(src, dst, args.rounds, work)
        extra = {} if args.copy_only else bench_verify_and_follow(src, dst, work)
        text = report(args.scale, args.split, args.rounds, copy, extra)
        Path(args.out).write_text(text)
        print(text)
    finally:
        for s in servers:
            _stop(s)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
