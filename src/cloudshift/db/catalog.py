"""What the catalogs say about a database: tables, keys, sizes, sequences.

Everything is read with plain catalog queries, so the same code serves check, copy and
verify, and works on managed services (RDS, Cloud SQL, Azure) without superuser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

INTEGER_TYPES = ("smallint", "integer", "bigint")

# Schemas that are the server's own, never migrated.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_USER_REL = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
"""


@dataclass
class Table:
    oid: int
    schema: str
    name: str
    relkind: str               # 'r' ordinary, 'p' partitioned (holds no rows itself)
    est_rows: int
    size: int                  # bytes, heap + toast
    columns: list[str]         # copyable: not dropped, not generated, in attnum order
    all_columns: list[str]     # including generated ones (verification compares them too)
    pk: list[str]              # primary key columns in key order, empty when none
    pk_first_type: str | None  # format_type of the first key column
    replident: str             # d default, n nothing, f full, i index
    ident_index: bool = False  # a REPLICA IDENTITY USING INDEX exists
    builtin_types: bool = False  # every copied column has a built-in type (binary COPY safe)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def ident(self) -> sql.Composed:
        return sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(self.name)])

    @property
    def int_key(self) -> bool:
        """The first key column is an integer: rows can be split into key ranges."""
        return bool(self.pk) and self.pk_first_type in INTEGER_TYPES

    @property
    def has_replica_identity(self) -> bool:
        if self.replident == "f":
            return True
        if self.replident == "i":
            return self.ident_index
        if self.replident == "d":
            return bool(self.pk)
        return False


def tables(conn: psycopg.Connection[Any], *, include_partitioned: bool = False) -> list[Table]:
    kinds = ["r", "p"] if include_partitioned else ["r"]
    rows = conn.execute(f"""
        SELECT c.oid, n.nspname, c.relname, c.relkind,
               greatest(c.reltuples, 0)::bigint,
               CASE WHEN c.relkind = 'r' THEN pg_table_size(c.oid) ELSE 0 END,
               c.relreplident,
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                       AND i.indisreplident)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = ANY(%s) AND c.relpersistence <> 't' AND {_USER_REL}
        ORDER BY n.nspname, c.relname""", (kinds,)).fetchall()
    cols: dict[int, list[tuple[str, bool]]] = {}
    user_typed: set[int] = set()
    for relid, attname, generated, typid in conn.execute("""
            SELECT a.attrelid, a.attname, a.attgenerated <> '', a.atttypid::int8
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attrelid, a.attnum"""):
        cols.setdefault(relid, []).append((attname, generated))
        # OIDs below FirstNormalObjectId (16384) are built in: identical on every server.
        # Binary COPY of user types (enums, domains, composites, their arrays) is not safe:
        # arrays and records carry element type OIDs, which differ between servers.
        if not generated and int(typid) >= 16384:
            user_typed.add(relid)
    pks: dict[int, tuple[list[str], str]] = {}
    for relid, names, first_type in conn.execute("""
            SELECT i.indrelid,
                   array_agg(a.attname ORDER BY k.ord),
                   (array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord))[1]
            FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indisprimary
            GROUP BY i.indrelid"""):
        pks[relid] = (list(names), str(first_type))
    out = []
    for oid, schema, name, kind, est, size, replident, ident_index in rows:
        c = cols.get(oid, [])
        pk, first = pks.get(oid, ([], None))
        out.append(Table(oid=oid, schema=schema, name=name, relkind=kind, est_rows=int(est),
                         size=int(size), columns=[n for n, g in c if not g],
                         all_columns=[n for n, _ in c], pk=pk, pk_first_type=first,
                         replident=replident, ident_index=bool(ident_index),
                         builtin_types=oid not in user_typed))
    return out


@dataclass(frozen=True)
class Sequence:
    schema: str
    name: str
    last_value: int | None
    is_called: bool

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def ident(self) -> sql.Composed:
        return sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(self.name)])


def sequences(conn: psycopg.Connection[Any]) -> list[Sequence]:
    """Every user sequence with its current value (read from the sequence itself)."""
    names = conn.execute(f"""
        SELECT n.nspname, c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND {_USER_REL}
        ORDER BY 1, 2""").fetchall()
    out = []
    for schema, name in names:
        ident = sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(name)])
        row = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(ident)
                           ).fetchone()
        assert row is not None
        out.append(Sequence(schema, name, int(row[0]) if row[0] is not None else None,
                            bool(row[1])))
    return out


def user_table_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(f"""
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_REL}""").fetchone()
    return int(row[0]) if row else 0


def server_version(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    row = conn.execute("SELECT current_setting('server_version_num')::int, "
                       "current_setting('server_version')").fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
