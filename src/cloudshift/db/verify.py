"""``db verify``: schema diff, then data diff by key ranges hashed on both servers.

Each table is cut into buckets (integer first key column: key ranges; other keys: ranges of a
hash of the key; no primary key: one bucket, the whole table). Both servers compute, in one
scan each and at the same time, ``count(*)`` and the sum of a 64-bit hash of every row's text
per bucket, so only a few numbers per bucket cross the network. A sum is order-free and,
unlike XOR, does not let two identical rows cancel out. Buckets that disagree are then read
row by row (key + row hash) on both sides to name the exact rows that differ.

Materialized views are compared as a whole: populated or not on each side and, when
populated on both, by row count and the sum of their rows' hashes. An unpopulated one cannot
be read (PostgreSQL refuses), and one populated on the source only fails the application's
first query on the target, so that alone is a difference.

Reads only: plain SELECTs, which take the ACCESS SHARE lock every query takes and never block
writers. Row text is rendered with the same session settings on both sides (UTC, ISO dates,
exact floats, hex bytea), so equal values hash equal.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.db import catalog
from cloudshift.db.catalog import Table
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import KIND
from cloudshift.jobs.results import ResultBase, summary

ROWS_PER_BUCKET = 2000
MAX_BUCKETS = 50_000
MAX_ROWS_SHOWN = 50
SEGMENT_BYTES = 64 << 20


@dataclass
class TableCheck:
    table: str
    method: str                      # 'key ranges', 'key hash ranges', 'count + table hash'
    rows_source: int = 0
    rows_target: int = 0
    buckets: int = 0
    bad_buckets: int = 0
    missing: list[str] = field(default_factory=list)   # keys in source, not in target
    extra: list[str] = field(default_factory=list)     # keys in target, not in source
    changed: list[str] = field(default_factory=list)   # same key, different row
    hash_differs: bool = False                         # tables without a key

    @property
    def ok(self) -> bool:
        return not (self.bad_buckets or self.missing or self.extra or self.changed
                    or self.hash_differs or self.rows_source != self.rows_target)


@dataclass
class MatviewCheck:
    table: str                       # schema.name of a materialized view on both sides
    populated_source: bool
    populated_target: bool
    rows_source: int = 0             # counted only when populated on both sides
    rows_target: int = 0
    hash_differs: bool = False

    @property
    def ok(self) -> bool:
        return (self.populated_source == self.populated_target and not self.hash_differs
                and self.rows_source == self.rows_target)

    def line(self) -> str:
        if self.populated_source != self.populated_target:
            yes, no = ("source", "target") if self.populated_source else ("target", "source")
            return f"{self.table}: materialized view populated on the {yes}, not on the {no}"
        return (f"{self.table}: materialized view rows {self.rows_source} vs "
                f"{self.rows_target}, hash {'differs' if self.hash_differs else 'matches'}")


@dataclass
class VerifyReport(ResultBase):
    schema: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    tables: list[TableCheck] = field(default_factory=list)
    matviews: list[MatviewCheck] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return (not self.schema and not self.sequences and all(t.ok for t in self.tables)
                and all(m.ok for m in self.matviews))

    def lines(self) -> list[str]:
        out = [f"schema: {d}" for d in self.schema]
        out += [f"sequence: {d}" for d in self.sequences]
        for t in self.tables:
            if t.ok:
                continue
            if t.method == "count + table hash":
                out.append(f"{t.table}: no primary key; rows {t.rows_source} vs "
                           f"{t.rows_target}, table hash "
                           f"{'differs' if t.hash_differs else 'matches'}")
                continue
            out.append(f"{t.table}: {t.bad_buckets} of {t.buckets} ranges differ "
                       f"(rows {t.rows_source} vs {t.rows_target})")
            for kind, keys in (("missing on target", t.missing), ("extra on target", t.extra),
                               ("differs", t.changed)):
                for k in keys[:MAX_ROWS_SHOWN]:
                    out.append(f"  {kind}: {t.table} {k}")
                if len(keys) > MAX_ROWS_SHOWN:
                    out.append(f"  ... and {len(keys) - MAX_ROWS_SHOWN} more {kind}")
        out += [m.line() for m in self.matviews if not m.ok]
        return out

    def to_dict(self) -> dict[str, Any]:
        return summary(KIND, "db-verify", self.ok, elapsed=round(self.elapsed, 3),
                       schema=self.schema, sequences=self.sequences,
                       tables=[{**vars(t), "ok": t.ok} for t in self.tables],
                       matviews=[{**vars(m), "ok": m.ok} for m in self.matviews])


# --- schema -------------------------------------------------------------------------------

_SCHEMA_QUERIES = {
    "table": """
        SELECT n.nspname || '.' || c.relname,
               CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                    WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                    WHEN 'f' THEN 'foreign table' ELSE c.relkind::text END
               || coalesce(' partition of ' || (SELECT pn.nspname || '.' || pc.relname
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                   WHERE i.inhrelid = c.oid AND c.relispartition), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {user}""",
    "column": """
        SELECT n.nspname || '.' || c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || CASE WHEN a.attgenerated <> '' THEN ' generated '
                       ELSE ' default ' END
               || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
          AND {user}""",
    "index": """
        SELECT n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid)
               || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {user}""",
    "constraint": """
        SELECT n.nspname || '.' || c.relname || '.' || co.conname,
               pg_get_constraintdef(co.oid)
               || CASE WHEN co.convalidated THEN '' ELSE ' NOT VALID' END
        FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user}""",
    "sequence": """
        SELECT n.nspname || '.' || c.relname,
               format('%s start %s increment %s min %s max %s cache %s%s',
                      format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                      s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END)
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user}""",
    "type": """
        SELECT n.nspname || '.' || t.typname,
               'enum (' || string_agg(quote_literal(e.enumlabel), ', '
                                      ORDER BY e.enumsortorder) || ')'
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        GROUP BY 1""",
}

_USER = ("n.nspname NOT IN ('pg_catalog', 'information_schema') "
         "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' "
         "AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass "
         "AND dep.objid = c.oid AND dep.deptype = 'e')")


def schema_objects(conn: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    return {kind: {str(k): str(v) for k, v in conn.execute(q.replace("{user}", _USER))}
            for kind, q in _SCHEMA_QUERIES.items()}


def schema_diff(src: dict[str, dict[str, str]], dst: dict[str, dict[str, str]]) -> list[str]:
    out = []
    for kind in _SCHEMA_QUERIES:
        a, b = src[kind], dst[kind]
        for k in sorted(a.keys() - b.keys()):
            out.append(f"{kind} {k} missing on target ({a[k]})")
        for k in sorted(b.keys() - a.keys()):
            out.append(f"{kind} {k} only on target ({b[k]})")
        for k in sorted(a.keys() & b.keys()):
            if a[k] != b[k]:
                out.append(f"{kind} {k} differs: source {a[k]!r}, target {b[k]!r}")
    return out


# --- data ---------------------------------------------------------------------------------

_MATVIEWS = """
    SELECT n.nspname, c.relname, c.relispopulated
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'm' AND {user}"""


def matviews(conn: psycopg.Connection[Any]) -> dict[str, tuple[sql.Identifier, bool]]:
    """Every user materialized view: ``schema.name`` -> (its identifier, populated?)."""
    return {f"{schema}.{name}": (sql.Identifier(schema, name), bool(populated))
            for schema, name, populated in conn.execute(_MATVIEWS.replace("{user}", _USER))}

def _row_text(cols: list[str]) -> sql.Composable:
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.Identifier(c) for c in cols))


def _row_hash(cols: list[str]) -> sql.Composable:
    # hashtextextended is the 64-bit hash behind hash partitioning, so it is stable across
    # platforms and major versions; it costs half of md5 here (measured: 1.6 s vs 3.4 s per
    # million pgbench rows). md5 is still used when narrowing down to rows.
    return sql.SQL("hashtextextended({}, 0)").format(_row_text(cols))


class _Pair:
    """A source and a target connection, and a helper thread so both query at once."""

    def __init__(self, src: Dsn, dst: Dsn) -> None:
        self.s = connect(src)
        self.d = connect(dst)
        self.helper = ThreadPoolExecutor(1)

    def both(self, q_src: sql.Composed, q_dst: sql.Composed | None = None
             ) -> tuple[list[Any], list[Any]]:
        fut: Future[list[Any]] = self.helper.submit(lambda: self.s.execute(q_src).fetchall())
        rows_d = self.d.execute(q_dst if q_dst is not None else q_src).fetchall()
        return fut.result(), rows_d

    def close(self) -> None:
        self.helper.shutdown()
        self.s.close()
        self.d.close()


@dataclass(frozen=True)
class _Plan:
    """How one table is compared: its buckets, and the key-range segments (tasks) that
    workers scan independently, so one big table keeps several workers busy."""

    table: Table
    other: Table
    cols: list[str]
    method: str
    bexpr: sql.Composable
    segments: list[sql.Composable]
    lo: int = 0              # integer keys: bucket b holds keys [lo + b*width, lo + (b+1)*width)
    width: int = 0


def _plan_table(conn_s: psycopg.Connection[Any], conn_d: psycopg.Connection[Any], t: Table,
                other: Table, jobs: int) -> _Plan:
    cols = [c for c in t.all_columns if c in set(other.all_columns)]
    everything: list[sql.Composable] = [sql.SQL("true")]
    if not t.pk or other.pk != t.pk:
        return _Plan(t, other, cols, "count + table hash", sql.SQL("0"), everything)
    # Planner estimates (never analyzed: 0) are enough to size buckets; a full count(*)
    # would cost one more scan of each side. ~100 bytes a row when nothing is known.
    est = max(t.est_rows, other.est_rows, t.size // 100, 1)
    nb = max(1, min(MAX_BUCKETS, math.ceil(est / ROWS_PER_BUCKET)))
    if not t.int_key:
        bexpr = sql.SQL("(hashtext({}) & 2147483647) % {}").format(_row_text(t.pk),
                                                                   sql.Literal(nb))
        return _Plan(t, other, cols, "key hash ranges", bexpr, everything)
    k0 = sql.Identifier(t.pk[0])
    q = sql.SQL("SELECT min({k})::bigint, max({k})::bigint FROM ONLY {t}").format(
        k=k0, t=t.ident())
    ends = [conn.execute(q).fetchone() for conn in (conn_s, conn_d)]
    lows = [e[0] for e in ends if e and e[0] is not None]
    highs = [e[1] for e in ends if e and e[1] is not None]
    lo, hi = (min(lows), max(highs)) if lows else (0, 0)
    width = max(1, math.ceil((hi - lo + 1) / nb))
    nb = math.ceil((hi - lo + 1) / width)
    bexpr = sql.SQL("(({k})::bigint - {lo}) / {w}").format(k=k0, lo=sql.Literal(lo),
                                                           w=sql.Literal(width))
    nseg = max(1, min(jobs * 2, nb, math.ceil(max(t.size, other.size) / SEGMENT_BYTES)))
    if nseg == 1:
        return _Plan(t, other, cols, "key ranges", bexpr, everything, lo, width)
    per = math.ceil(nb / nseg)
    edges = [lo + i * per * width for i in range(1, nseg)]
    bounds: list[int | None] = [None, *edges, None]
    segments: list[sql.Composable] = []
    for a, b in itertools.pairwise(bounds):
        parts = []
        if a is not None:
            parts.append(sql.SQL("{} >= {}").format(k0, sql.Literal(a)))
        if b is not None:
            parts.append(sql.SQL("{} < {}").format(k0, sql.Literal(b)))
        segments.append(sql.SQL(" AND ").join(parts))
    return _Plan(t, other, cols, "key ranges", bexpr, segments, lo, width)


def _scan_segment(pair: _Pair, plan: _Plan, where: sql.Composable
                  ) -> tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]]:
    h = _row_hash(plan.cols)
    q = sql.SQL("SELECT {b} AS b, count(*), sum({h})::text FROM ONLY {t} WHERE {w} "
                "GROUP BY 1").format(b=plan.bexpr, h=h, t=plan.table.ident(), w=where)
    ra, rb = pair.both(q)
    return ({int(r[0]): (int(r[1]), str(r[2])) for r in ra},
            {int(r[0]): (int(r[1]), str(r[2])) for r in rb})


def _finish(pair: _Pair, plan: _Plan, da: dict[int, tuple[int, str]],
            db: dict[int, tuple[int, str]]) -> TableCheck:
    t = plan.table
    check = TableCheck(t.qualified, plan.method, sum(v[0] for v in da.values()),
                       sum(v[0] for v in db.values()), buckets=len(da.keys() | db.keys()))
    bad = sorted(b for b in da.keys() | db.keys() if da.get(b) != db.get(b))
    check.bad_buckets = len(bad)
    if plan.method == "count + table hash":
        check.hash_differs = bool(bad) and da.get(0, (0, ""))[1] != db.get(0, (0, ""))[1]
        return check
    for i in range(0, len(bad), 200):
        _narrow(pair, plan, bad[i:i + 200], check)
    return check


def _narrow(pair: _Pair, plan: _Plan, buckets: list[int], check: TableCheck) -> None:
    t = plan.table
    keys = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in t.pk)
    where: sql.Composable
    if plan.width:
        # Key ranges, so the servers read just those ranges through the primary key index.
        k0 = sql.Identifier(t.pk[0])
        where = sql.SQL(" OR ").join(
            sql.SQL("({k} >= {a} AND {k} < {b})").format(
                k=k0, a=sql.Literal(plan.lo + b * plan.width),
                b=sql.Literal(plan.lo + (b + 1) * plan.width)) for b in buckets)
    else:
        where = sql.SQL("{} = ANY({})").format(plan.bexpr, sql.Literal(buckets))
    q = sql.SQL("SELECT {keys}, md5({row}) FROM ONLY {t} WHERE {w}").format(
        keys=keys, row=_row_text(plan.cols), t=t.ident(), w=where)
    ra, rb = pair.both(q)
    n = len(t.pk)
    a = {tuple(r[:n]): r[n] for r in ra}
    b = {tuple(r[:n]): r[n] for r in rb}

    def name(k: tuple[Any, ...]) -> str:
        return "(" + ", ".join(f"{c}={v}" for c, v in zip(t.pk, k, strict=True)) + ")"

    check.missing += [name(k) for k in sorted(a.keys() - b.keys())]
    check.extra += [name(k) for k in sorted(b.keys() - a.keys())]
    check.changed += [name(k) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]


def _compare_matview(pair: _Pair, name: str, ident: sql.Identifier, populated_source: bool,
                     populated_target: bool) -> MatviewCheck:
    check = MatviewCheck(name, populated_source, populated_target)
    if not (populated_source and populated_target):
        return check
    # Every column in order: a materialized view's columns cannot be altered or dropped.
    # ROW(m.*), not m: a column named m would win over the whole-row reference.
    q = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(ROW(m.*)::text, 0)), 0)::text "
                "FROM {} AS m").format(ident)
    (a,), (b,) = pair.both(q)
    check.rows_source, check.rows_target = int(a[0]), int(b[0])
    check.hash_differs = a[1] != b[1]
    return check


def verify_databases(src_text: str, dst_text: str, *, jobs: int = 4,
                     on_table: Any = None) -> VerifyReport:
    started = time.monotonic()
    src, dst = Dsn(src_text, "source"), Dsn(dst_text, "target")
    report = VerifyReport()
    with connect(src) as sconn, connect(dst) as dconn:
        report.schema = schema_diff(schema_objects(sconn), schema_objects(dconn))
        st = catalog.tables(sconn)
        dt = {t.qualified: t for t in catalog.tables(dconn)}
        sseq = {s.qualified: s for s in catalog.sequences(sconn)}
        dseq = {s.qualified: s for s in catalog.sequences(dconn)}
        smv, dmv = matviews(sconn), matviews(dconn)
    report.sequences = _sequence_diff(sseq, dseq)
    todo = [t for t in sorted(st, key=lambda t: -t.size) if t.qualified in dt]
    pairs = _ThreadPairs(src, dst)

    def matview(name: str) -> MatviewCheck:
        return _compare_matview(pairs.get(), name, smv[name][0], smv[name][1], dmv[name][1])

    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            report.tables = _compare_tables(pool, pairs, todo, dt, jobs, on_table)
            # Only on one side: the schema diff names it already.
            report.matviews = list(pool.map(matview, sorted(smv.keys() & dmv.keys())))
    finally:
        pairs.close()
    report.tables.sort(key=lambda c: c.table)
    report.elapsed = time.monotonic() - started
    return report


def _sequence_diff(sseq: dict[str, catalog.Sequence], dseq: dict[str, catalog.Sequence]
                   ) -> list[str]:
    out = []
    for name, s in sorted(sseq.items()):
        d = dseq.get(name)
        if d is not None and (s.last_value, s.is_called) != (d.last_value, d.is_called):
            out.append(f"{name} is at {s.last_value} on the source, "
                       f"{d.last_value} on the target")
    return out


class _ThreadPairs:
    """One :class:`_Pair` per worker thread, opened on its first task, all closed at the end:
    a connection runs one query at a time, so the threads would otherwise wait on each other."""

    def __init__(self, src: Dsn, dst: Dsn) -> None:
        self.src, self.dst = src, dst
        self.local = threading.local()
        self.pairs: list[_Pair] = []
        self.lock = threading.Lock()

    def get(self) -> _Pair:
        p: _Pair | None = getattr(self.local, "pair", None)
        if p is None:
            p = _Pair(self.src, self.dst)
            self.local.pair = p
            with self.lock:
                self.pairs.append(p)
        return p

    def close(self) -> None:
        for p in self.pairs:
            p.close()


def _compare_tables(pool: ThreadPoolExecutor, pairs: _ThreadPairs, todo: list[Table],
                    dt: dict[str, Table], jobs: int, on_table: Any) -> list[TableCheck]:
    """Plan every table, scan all their segments in one pool, then narrow down each table."""
    lock = threading.Lock()

    def plan(t: Table) -> _Plan:
        p = pairs.get()
        return _plan_table(p.s, p.d, t, dt[t.qualified], jobs)

    plans = list(pool.map(plan, todo))

    def scan(item: tuple[int, sql.Composable]) -> tuple[int, Any]:
        i, where = item
        return i, _scan_segment(pairs.get(), plans[i], where)

    # Segments of all tables share one queue, so one big table keeps every worker busy.
    tasks = [(i, w) for i, p in enumerate(plans) for w in p.segments]
    merged: list[tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]]] = [
        ({}, {}) for _ in plans]
    for i, (da, db) in pool.map(scan, tasks):
        merged[i][0].update(da)
        merged[i][1].update(db)

    def finish(i: int) -> TableCheck:
        result = _finish(pairs.get(), plans[i], *merged[i])
        if on_table is not None:
            with lock:
                on_table(result)
        return result

    return list(pool.map(finish, range(len(plans))))
