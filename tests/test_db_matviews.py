"""Materialized views through db copy and db verify, against two real PostgreSQL servers.

``pg_dump | psql`` refreshes the materialized views that are populated on the source (the
"MATERIALIZED VIEW DATA" entries of post-data); db copy must too, in dependency order, after
the rows and indexes they read, and journaled so that a resumed run does not redo them. db
verify must notice a materialized view that is unpopulated, or holds other rows, on the
target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloudshift.core.errors import ConfigError
from cloudshift.db.copy import CopyOptions, copy_database
from cloudshift.db.verify import verify_databases
from servers.postgres import PgDbs
from test_db_cli import cli
from test_db_copy import run_sql, scalar

# big_regions reads region_totals but sorts before it by name, so refreshing by name (or in
# catalog order) instead of by dependency would fail or leave it empty. A column named like a
# table alias ("m") must not be taken for the whole row when the view's rows are hashed.
MATVIEWS = """
CREATE TABLE sales (id int PRIMARY KEY, region text NOT NULL, amount numeric NOT NULL);
INSERT INTO sales SELECT i, (ARRAY['EU', 'US', 'JP', 'BR'])[1 + i % 4], (i % 97) * 1.25
FROM generate_series(1, 4000) i;
CREATE MATERIALIZED VIEW region_totals AS
    SELECT region, count(*) AS m, sum(amount) AS total FROM sales GROUP BY region;
CREATE UNIQUE INDEX region_totals_region ON region_totals (region);
CREATE MATERIALIZED VIEW big_regions AS
    SELECT region, total FROM region_totals WHERE m >= 1000;
CREATE MATERIALIZED VIEW sales_archive AS SELECT * FROM sales WHERE id > 3000 WITH NO DATA;
"""


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def populated(dsn: str) -> dict[str, bool]:
    return dict(rows(dsn, "SELECT relname, relispopulated FROM pg_class "
                          "WHERE relkind = 'm' ORDER BY 1"))


def copy(pg: PgDbs, tmp_path: Path, **kw: Any) -> None:
    copy_database(pg.src, pg.dst, CopyOptions(job_dir=tmp_path / "job", jobs=2, **kw))


def test_copy_refreshes_populated_matviews_and_verify_accepts_the_result(
        pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, MATVIEWS)
    copy(pg_dbs, tmp_path)

    assert populated(pg_dbs.dst) == {"big_regions": True, "region_totals": True,
                                     "sales_archive": False}
    for mv in ("region_totals", "big_regions"):
        query = f"SELECT * FROM {mv} ORDER BY region"
        assert rows(pg_dbs.dst, query) == rows(pg_dbs.src, query), mv
    assert len(rows(pg_dbs.dst, "SELECT * FROM big_regions")) == 4
    # The index on the matview exists, is valid, and holds the refreshed rows: a concurrent
    # refresh needs both a populated view and a usable unique index.
    assert scalar(pg_dbs.dst, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                              "'region_totals_region'::regclass") is True
    run_sql(pg_dbs.dst, "REFRESH MATERIALIZED VIEW CONCURRENTLY region_totals")

    report = verify_databases(pg_dbs.src, pg_dbs.dst, jobs=2)
    assert report.ok, report.lines()
    checked = {m.table: (m.populated_source, m.populated_target) for m in report.matviews}
    assert checked == {"public.big_regions": (True, True),
                       "public.region_totals": (True, True),
                       "public.sales_archive": (False, False)}
    proc = cli("verify", pg_dbs.src, pg_dbs.dst, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("change", "expected"), [
    ("REFRESH MATERIALIZED VIEW big_regions WITH NO DATA",
     "public.big_regions: materialized view populated on the source, not on the target"),
    ("REFRESH MATERIALIZED VIEW sales_archive",
     "public.sales_archive: materialized view populated on the target, not on the source"),
    # The base table ends equal to the source's; only the matview's rows differ.
    ("UPDATE sales SET amount = amount + 1 WHERE id = 1; "
     "REFRESH MATERIALIZED VIEW region_totals; "
     "UPDATE sales SET amount = amount - 1 WHERE id = 1",
     "public.region_totals: materialized view rows 4 vs 4, hash differs"),
    # EU drops under 1000 sales while both views refresh, then the row comes back.
    ("DELETE FROM sales WHERE id = 4; REFRESH MATERIALIZED VIEW region_totals; "
     "REFRESH MATERIALIZED VIEW big_regions; INSERT INTO sales VALUES (4, 'EU', 5.00)",
     "public.big_regions: materialized view rows 4 vs 3, hash differs"),
])
def test_verify_names_a_matview_that_differs_on_the_target(pg_dbs: PgDbs, tmp_path: Path,
                                                           change: str, expected: str) -> None:
    run_sql(pg_dbs.src, MATVIEWS)
    copy(pg_dbs, tmp_path)
    run_sql(pg_dbs.dst, change)
    proc = cli("verify", pg_dbs.src, pg_dbs.dst, home=tmp_path / "home")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert expected in proc.stdout.splitlines(), proc.stdout


def test_resumed_copy_refreshes_only_the_matviews_left(pg_dbs: PgDbs, tmp_path: Path) -> None:
    """The REFRESH of z_gated fails on the target until a setting is opened there; the run
    that resumes must refresh it, and not refresh a_first again (a REFRESH swaps in a new
    relfilenode, so a second one would show)."""
    run_sql(pg_dbs.src, """
        CREATE FUNCTION gate(x int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce(current_setting('cloudshift_test.gate', true), '') <> 'open' THEN
                RAISE EXCEPTION 'the gate is closed';
            END IF;
            RETURN x;
        END $$;
        CREATE TABLE nums (n int PRIMARY KEY);
        INSERT INTO nums SELECT generate_series(1, 100);
        CREATE MATERIALIZED VIEW a_first AS SELECT sum(n) AS s FROM nums;
        SET cloudshift_test.gate = 'open';
        CREATE MATERIALIZED VIEW z_gated AS SELECT public.gate(n) AS n FROM nums;""")
    with pytest.raises(ConfigError, match="z_gated"):
        copy(pg_dbs, tmp_path)
    assert populated(pg_dbs.dst) == {"a_first": True, "z_gated": False}
    node = scalar(pg_dbs.dst, "SELECT pg_relation_filenode('a_first')")

    run_sql(pg_dbs.dst, f'ALTER DATABASE "{pg_dbs.name}" SET cloudshift_test.gate = \'open\'')
    copy(pg_dbs, tmp_path)
    assert populated(pg_dbs.dst) == {"a_first": True, "z_gated": True}
    assert scalar(pg_dbs.dst, "SELECT pg_relation_filenode('a_first')") == node
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM z_gated") == 100
    assert verify_databases(pg_dbs.src, pg_dbs.dst).ok
