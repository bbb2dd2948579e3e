"""What the data step of ``db copy`` has left to copy: the chunks (whole tables, or key ranges
of big tables), planned once and kept in the journal, so a re-run takes up where the last
one stopped.

A re-run plans again only what changed: a table written to on the source since the first
run's snapshot is dropped from the journal and planned again in full; a table new to the
journal is cut into chunks; a chunk a killed run left ``inflight`` is cleaned before it is
loaded again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.db import catalog
from cloudshift.db.catalog import Table
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import DbJournal
from cloudshift.db.postdata import analyze_key
from cloudshift.db.pump import Chunk

# A table is cut into at most this many key ranges, whatever its size.
MAX_RANGES = 256


@dataclass
class Plan:
    chunks: list[Chunk]                  # still to copy, largest table first
    tables: dict[str, Table]             # every table of the copy, by qualified name
    parents: set[str]                    # tables with inheritance children
    recopied: list[str] = field(default_factory=list)  # written to since the first run


def write_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Each table's inserts + updates + deletes so far, which tell a re-run what changed."""
    return {f"{s}.{t}": int(n) for s, t, n in conn.execute(
        "SELECT schemaname, relname, n_tup_ins + n_tup_upd + n_tup_del "
        "FROM pg_stat_all_tables")}


def plan_chunks(src: Dsn, dst_conn: psycopg.Connection[Any], journal: DbJournal,
                snapshot: str, counters: dict[str, int], split_bytes: int) -> Plan:
    """Read the tables as of ``snapshot``, bring the journal's chunks up to date with them,
    and return what is left."""
    with connect(src) as pconn:
        pconn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        pconn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        tables = {t.qualified: t for t in catalog.tables(pconn)}
        parents = _inheritance_parents(pconn)
        planned = {tbl for _, tbl, *_ in journal.chunks()}
        recopied = _forget_changed(journal, dst_conn, tables, planned, counters)
        for t in tables.values():
            if t.qualified not in planned or t.qualified in recopied:
                _add_table(pconn, journal, t, counters, split_bytes)
        pconn.execute("COMMIT")
    return Plan(_left(journal, tables), tables, parents, recopied)


def _inheritance_parents(conn: psycopg.Connection[Any]) -> set[str]:
    return {f"{n}.{t}" for n, t in conn.execute(
        "SELECT DISTINCT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace")}


def _forget_changed(journal: DbJournal, dst_conn: psycopg.Connection[Any],
                    tables: dict[str, Table], planned: set[str], counters: dict[str, int]
                    ) -> list[str]:
    """Tables written to since the first run's snapshot: their done chunks are stale, so
    their chunks and rows on the target go, and they are analyzed again. Returns them."""
    known = journal.table_writes()
    changed = sorted(name for name in planned
                     if name in known and counters.get(name, -1) != known[name])
    for name in changed:
        journal.drop_table_chunks(name)
        if name in tables:
            dst_conn.execute(sql.SQL("TRUNCATE ONLY {}").format(tables[name].ident()))
        journal.step(analyze_key(name), "todo")
    return changed


def _add_table(conn: psycopg.Connection[Any], journal: DbJournal, t: Table,
               counters: dict[str, int], split_bytes: int) -> None:
    journal.set_table(t.qualified, counters.get(t.qualified, 0), t.size)
    for i, (lo, hi) in enumerate(_ranges(conn, t, split_bytes)):
        journal.add_chunk(f"{t.qualified}#{i}", t.qualified, lo, hi)


def _ranges(conn: psycopg.Connection[Any], t: Table, split_bytes: int
            ) -> list[tuple[int | None, int | None]]:
    if not t.int_key or t.size <= split_bytes:
        return [(None, None)]
    row = conn.execute(sql.SQL("SELECT min({k}), max({k}) FROM ONLY {t}").format(
        k=sql.Identifier(t.pk[0]), t=t.ident())).fetchone()
    if row is None or row[0] is None:
        return [(None, None)]
    lo, hi = int(row[0]), int(row[1])
    n = min(math.ceil(t.size / split_bytes), MAX_RANGES, hi - lo + 1)
    if n <= 1:
        return [(None, None)]
    width = math.ceil((hi - lo + 1) / n)
    bounds = [lo + i * width for i in range(1, n)]
    # The outer ranges are open, so a re-plan on a later snapshot still covers every key.
    edges: list[int | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _left(journal: DbJournal, tables: dict[str, Table]) -> list[Chunk]:
    """The journal's chunks not done, largest table first. One a killed run left in flight
    may have committed: it is cleaned (TRUNCATE, or DELETE of its range) first."""
    todo: list[Chunk] = []
    for cid, tbl, lo, hi, state in journal.chunks():
        if state == "done" or tbl not in tables:
            continue
        clean = None
        if state == "inflight":
            clean = "truncate" if lo is None and hi is None else "delete"
        todo.append(Chunk(cid, tables[tbl], lo, hi, clean))
    todo.sort(key=lambda c: (-c.table.size, int(c.cid.rsplit("#", 1)[1])))
    return todo
