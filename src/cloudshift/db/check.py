"""``db check``: what a copy of SRC into DST needs, and what would stop it, before starting.

Every finding is ``info``, ``warning`` or ``blocker``; each blocker carries the fix. The copy
time estimate comes from a short measured read of the largest table (up to 16 MiB through
COPY), so it reflects this machine's link to the source, not a guess.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.db import catalog
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import KIND
from cloudshift.db.schema import tool
from cloudshift.jobs.results import ResultBase, summary


@dataclass
class Finding:
    level: str      # info, warning, blocker
    topic: str
    message: str
    fix: str | None = None


@dataclass
class CheckReport(ResultBase):
    source: str
    target: str
    findings: list[Finding] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    total_bytes: int = 0
    read_rate: float | None = None
    estimate_seconds: float | None = None

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "blocker"]

    @property
    def ok(self) -> bool:
        return not self.blockers

    def add(self, level: str, topic: str, message: str, fix: str | None = None) -> None:
        self.findings.append(Finding(level, topic, message, fix))

    def to_dict(self) -> dict[str, Any]:
        return summary(KIND, "db-check", self.ok, source=self.source, target=self.target,
                       total_bytes=self.total_bytes, read_rate=self.read_rate,
                       estimate_seconds=self.estimate_seconds,
                       findings=[vars(f) for f in self.findings], tables=self.tables)


def _pg_dump_major() -> int | None:
    try:
        out = subprocess.run([tool("pg_dump"), "--version"], capture_output=True, text=True,
                             check=False).stdout
    except Exception:
        return None
    m = re.search(r"(\d+)\.", out)
    return int(m.group(1)) if m else None


Conn = psycopg.Connection[Any]


def _one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def check(src_text: str, dst_text: str, *, follow: bool = False, jobs: int = 4,
          force: bool = False) -> CheckReport:
    """Every finding, in the order a migration meets them."""
    src, dst = Dsn(src_text, "source"), Dsn(dst_text, "target")
    rep = CheckReport(src.safe(), dst.safe())
    with connect(src) as s, connect(dst) as d:
        source_major, target_major = _versions(rep, s, d)
        _tools(rep, source_major)
        tables = _sizes(rep, s)
        _extensions(rep, s, d)
        _keys(rep, tables, follow)
        _large_objects(rep, s)
        _wal_level(rep, s, follow)
        if follow:
            _replication(rep, s, d, target_major)
        _privileges(rep, s, d)
        _roles(rep, s, d)
        if not force:
            _target_empty(rep, d)
        _estimate(rep, s, tables, jobs)
    return rep


def _versions(rep: CheckReport, s: Conn, d: Conn) -> tuple[int, int]:
    """(source major version, target major version)."""
    snum, sver = catalog.server_version(s)
    dnum, dver = catalog.server_version(d)
    rep.add("info", "version", f"source PostgreSQL {sver}, target PostgreSQL {dver}")
    if dnum // 10000 < snum // 10000:
        rep.add("blocker", "version", "the target's major version is older than the "
                "source's; its DDL may not load",
                "migrate to the same or a newer major version")
    return snum // 10000, dnum // 10000


def _tools(rep: CheckReport, source_major: int) -> None:
    dump_major = _pg_dump_major()
    if dump_major is None or dump_major < source_major:
        rep.add("blocker", "tools", f"pg_dump here is {dump_major or 'missing'}; it must be "
                f"at least the source's major version {source_major}",
                f"install postgresql-client-{source_major}")


def _sizes(rep: CheckReport, s: Conn) -> list[catalog.Table]:
    tables = catalog.tables(s)
    rep.total_bytes = sum(t.size for t in tables)
    rep.tables = [{"table": t.qualified, "bytes": t.size, "rows_estimate": t.est_rows,
                   "primary_key": t.pk, "replica_identity": t.has_replica_identity}
                  for t in sorted(tables, key=lambda t: -t.size)]
    rep.add("info", "size", f"{len(tables)} tables, {rep.total_bytes} bytes of table data")
    return tables


def _extensions(rep: CheckReport, s: Conn, d: Conn) -> None:
    installed = {r[0]: r[1] for r in s.execute(
        "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql'")}
    available = {r[0] for r in d.execute("SELECT name FROM pg_available_extensions")}
    for ext in sorted(installed):
        if ext not in available:
            rep.add("blocker", "extension", f"extension {ext} is used on the source but "
                    "not available on the target",
                    f"install {ext} on the target server (or enable it in the managed "
                    "service's allow-list)")


def _keys(rep: CheckReport, tables: list[catalog.Table], follow: bool) -> None:
    """Tables without a primary key, and without a replica identity (which --follow needs
    for their updates and deletes)."""
    no_pk = [t.qualified for t in tables if not t.pk]
    if no_pk:
        rep.add("warning", "keys", f"{len(no_pk)} table(s) without a primary key are copied "
                "in one piece and verified by count + whole-table hash: "
                + ", ".join(no_pk[:10]), "add primary keys where the data has one")
    no_ident = [t.qualified for t in tables if not t.has_replica_identity]
    if no_ident:
        rep.add("blocker" if follow else "warning", "replica identity",
                f"{len(no_ident)} table(s) have no replica identity; --follow cannot "
                "replicate their updates and deletes: " + ", ".join(no_ident[:10]),
                f"ALTER TABLE {no_ident[0]} REPLICA IDENTITY FULL (or add a primary key)")


def _large_objects(rep: CheckReport, s: Conn) -> None:
    lo = int(_one(s, "SELECT count(*) FROM pg_largeobject_metadata") or 0)
    if lo:
        rep.add("blocker", "large objects", f"{lo} large objects (pg_largeobject) are not "
                "copied by db copy", "copy them with pg_dump --large-objects, or move "
                "them into bytea columns first")


def _wal_level(rep: CheckReport, s: Conn, follow: bool) -> None:
    wal = str(_one(s, "SELECT current_setting('wal_level')"))
    if wal != "logical":
        rep.add("blocker" if follow else "info", "wal_level",
                f"source wal_level = {wal}; --follow needs logical",
                "ALTER SYSTEM SET wal_level = logical; then restart the source (RDS: "
                "rds.logical_replication = 1; Cloud SQL: cloudsql.logical_decoding = on)")
    else:
        rep.add("info", "wal_level", "source wal_level = logical: --follow is possible")


def _replication(rep: CheckReport, s: Conn, d: Conn, target_major: int) -> None:
    """What --follow needs besides wal_level: a free slot, REPLICATION on the source, a
    superuser on the target for the subscription."""
    free = int(_one(s, "SELECT current_setting('max_replication_slots')::int - "
                       "(SELECT count(*) FROM pg_replication_slots)") or 0)
    if free < 1:
        rep.add("blocker", "replication slots", "no free replication slot on the "
                "source", "raise max_replication_slots and restart, or drop an "
                "unused slot")
    if not _one(s, "SELECT rolsuper OR rolreplication FROM pg_roles "
                   "WHERE rolname = current_user"):
        rep.add("blocker", "privileges", "the source user lacks REPLICATION",
                "ALTER ROLE <user> REPLICATION (RDS: GRANT rds_replication TO <user>)")
    if not _one(d, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        rep.add("blocker", "privileges", "creating a subscription on PostgreSQL "
                f"{target_major} needs a superuser on the target",
                "use the service's admin role (e.g. cloudsqlsuperuser) on the target")


def _privileges(rep: CheckReport, s: Conn, d: Conn) -> None:
    """SELECT on every source table; CREATE on the target database."""
    unreadable = [r[0] for r in s.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' "
        "AND NOT has_table_privilege(c.oid, 'SELECT')")]
    if unreadable:
        rep.add("blocker", "privileges", f"the source user cannot read {len(unreadable)} "
                "table(s): " + ", ".join(unreadable[:10]),
                "GRANT SELECT ON ALL TABLES IN SCHEMA ... TO <user>, or use the owner")
    if not _one(d, "SELECT has_database_privilege(current_database(), 'CREATE')"):
        rep.add("blocker", "privileges", "the target user may not create schemas in the "
                "target database", "GRANT CREATE ON DATABASE <db> TO <user>")


def _roles(rep: CheckReport, s: Conn, d: Conn) -> None:
    owners = {r[0] for r in s.execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'")}
    roles = {r[0] for r in d.execute("SELECT rolname FROM pg_roles")}
    if owners - roles:
        rep.add("warning", "roles", "owners missing on the target: "
                + ", ".join(sorted(owners - roles)),
                "create these roles on the target, or copy with --no-owner --no-acl")


def _target_empty(rep: CheckReport, d: Conn) -> None:
    n = catalog.user_table_count(d)
    if n:
        rep.add("blocker", "target", f"the target database is not empty ({n} tables, "
                "views or sequences)", "use an empty database, or copy with --force")


def _estimate(rep: CheckReport, s: Conn, tables: list[catalog.Table], jobs: int) -> None:
    rep.read_rate = _probe_rate(s, tables)
    if rep.read_rate:
        parallel = max(1, min(jobs, len(tables)))
        rep.estimate_seconds = round(rep.total_bytes / (rep.read_rate * parallel) * 1.5, 1)
        rep.add("info", "estimate", f"about {rep.estimate_seconds:.0f}s to copy at a "
                f"measured {rep.read_rate / 1e6:.0f} MB/s per worker x {parallel} "
                "workers, plus 50% for indexes and constraints (a rough guide)")


def _probe_rate(conn: psycopg.Connection[Any], tables: list[catalog.Table]) -> float | None:
    if not tables:
        return None
    biggest = max(tables, key=lambda t: t.size)
    if biggest.size == 0:
        return None
    limit = 16 << 20
    rows = max(1, int(biggest.est_rows * min(1.0, limit / biggest.size)))
    n = 0
    t0 = time.monotonic()
    query = sql.SQL("COPY (SELECT * FROM ONLY {} LIMIT {}) TO STDOUT").format(
        biggest.ident(), sql.Literal(rows))
    with conn.cursor().copy(query) as cp:
        for block in cp:
            n += len(block)
    secs = time.monotonic() - t0
    return n / secs if secs > 0 and n else None
