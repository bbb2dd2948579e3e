"""`cloudshift jobs` and `cloudshift resume` for every kind of job: object copies and
PostgreSQL copies listed together, a journal that cannot be read listed as such, and a job of
either kind continued from its journal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudshift.jobs.journal import JournalBase
from cloudshift.jobs.spec import JobSpec
from servers.postgres import PASSWORD, PgDbs

SRC_DSN = "postgresql://app@old-host:5432/shop"
DST_DSN = "postgresql://app@new-host:5432/shop"
# cloudshift 0.1's id of the job SRC_DSN -> DST_DSN, computed once by hand from its formula,
# "db-" + sha256(json.dumps([src.safe(), dst.safe()])).hexdigest()[:12]: a 0.1 journal (and,
# with --follow, its replication slot and publication) lives under this name.
DB_ID_0_1 = "db-b1be49eaca9b"


def cli(*args: str, home: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudshift.cli", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "CLOUDSHIFT_HOME": str(home), **(env or {})})


def files(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"f{i:02d}.txt").write_text(f"object {i}\n" * (i + 1))
    return root


def object_job(tmp_path: Path, home: Path) -> str:
    proc = cli("copy", str(files(tmp_path / "src", 3)), str(tmp_path / "dst"), "--json",
               home=home)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout.splitlines()[-1])["job_id"])


def db_journal(home: Path, spec_json: str | None = None, *, follow: bool = False,
               status: str = "done") -> str:
    """A db job's journal: the db mover's own tables, its spec, one run ended ``status``.
    With ``spec_json`` the spec is written as given (cloudshift 0.1's db copy wrote
    ``{"src", "dst", "follow"}``); otherwise as the job frame records a db spec."""
    from cloudshift.db.dsn import Dsn
    from cloudshift.db.journal import DbJournal, db_spec

    spec = db_spec(Dsn(SRC_DSN, "source"), Dsn(DST_DSN, "target"), follow=follow,
                   no_owner=False, no_acl=False, split_bytes=1 << 30)
    # Both in the folder cloudshift 0.1 named the job by: a 0.1 journal is where it was.
    folder = home / "jobs" / DB_ID_0_1
    DbJournal(folder).close()          # its tables, as a db copy creates them
    journal = JournalBase(folder)
    if spec_json is None:
        journal.record_spec(spec)
    else:
        journal.put("spec", spec_json)
    journal.start_run()
    journal.finish_run(status, {"rows": 10, "bytes": 1000})
    journal.close()
    return DB_ID_0_1


def test_resume_of_a_follow_job_still_to_subscribe_refuses_up_front(tmp_path: Path) -> None:
    """The target server connects to the source itself: without a password in the source
    DSN the subscription cannot be made, so the resume says so before doing any work (no
    server here: it must not try to connect)."""
    from cloudshift.db.journal import DbJournal

    home = tmp_path / "state"
    db_id = db_journal(home, follow=True, status="interrupted")
    journal = DbJournal(home / "jobs" / db_id)
    for step in ("pre-data", "data"):
        journal.step(step, "done")
    journal.close()
    proc = cli("resume", db_id, home=home, env={"PGPASSWORD": "not-used"})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "no source password" in lines[0]
    assert f"cloudshift db copy {SRC_DSN} ... --follow" in lines[0]
    assert "password in the source DSN" in lines[0]


@pytest.mark.parametrize("workers", ["65", "500"])
def test_resume_of_a_db_job_keeps_db_copy_s_worker_range(tmp_path: Path, workers: str) -> None:
    home = tmp_path / "state"
    db_id = db_journal(home, status="interrupted")
    proc = cli("resume", db_id, "--transfers", workers, home=home)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--transfers {workers}" in lines[0] and "1 to 64" in lines[0]


def test_a_db_job_keeps_its_0_1_id() -> None:
    """The id is what finds a job's journal (and its slot): a db copy of the same two
    servers must land where cloudshift 0.1 put it, whatever way the DSNs are written."""
    from cloudshift.db.dsn import Dsn
    from cloudshift.db.journal import db_spec

    for src, dst in ((SRC_DSN, DST_DSN),
                     ("postgresql://app:pw-1@old-host/shop?sslmode=require",
                      "host=new-host user=app password=pw-2 dbname=shop")):
        spec = db_spec(Dsn(src, "source"), Dsn(dst, "target"), follow=True, no_owner=True,
                       no_acl=False, split_bytes=64 << 20)
        assert spec.job_id == DB_ID_0_1
        assert JobSpec.from_json(spec.to_json()).job_id == DB_ID_0_1
        assert "pw-" not in spec.to_json()
    old = JobSpec.from_json(json.dumps({"src": SRC_DSN, "dst": DST_DSN, "follow": True}))
    assert old.job_id == DB_ID_0_1


@pytest.mark.parametrize("legacy", [False, True], ids=["frame-spec", "0.1-spec"])
def test_jobs_lists_object_and_db_jobs(tmp_path: Path, legacy: bool) -> None:
    home = tmp_path / "state"
    copy_id = object_job(tmp_path, home)
    old = json.dumps({"src": SRC_DSN, "dst": DST_DSN, "follow": False})
    db_id = db_journal(home, old if legacy else None)

    proc = cli("jobs", home=home)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert set(lines) == {copy_id, db_id}, proc.stdout
    assert f"{tmp_path / 'src'} -> {tmp_path / 'dst'}" in lines[copy_id]
    assert "3 done" in lines[copy_id]
    assert f"{SRC_DSN} -> {DST_DSN}" in lines[db_id]
    assert " db " in lines[db_id] and " objects " in lines[copy_id]

    proc = cli("jobs", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    rows = {r["job"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows[copy_id]["kind"] == "objects" and rows[copy_id]["op"] == "copy"
    assert rows[copy_id]["status"] == "done" and rows[copy_id]["progress"]["done"] == 3
    assert rows[copy_id]["objects"] == rows[copy_id]["progress"]  # 0.1's key stays
    assert rows[db_id]["kind"] == "db"
    assert (rows[db_id]["src"], rows[db_id]["dst"]) == (SRC_DSN, DST_DSN)
    assert rows[db_id]["status"] == "done"


def test_a_journal_that_cannot_be_read_is_listed_not_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "state"
    copy_id = object_job(tmp_path, home)
    broken = home / "jobs" / "copy-000000000000"
    broken.mkdir()
    (broken / "journal.db").write_bytes(b"this is not a database, it was cut short\n" * 40)
    unknown = JobSpec("images", {"src": "registry-a/shop", "dst": "registry-b/shop"})
    journal = JournalBase(home / "jobs" / unknown.job_id)
    journal.record_spec(unknown)
    journal.close()

    proc = cli("jobs", home=home)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert set(lines) == {copy_id, broken.name, unknown.job_id}, proc.stdout
    assert "unreadable" in lines[broken.name]
    assert "images" in lines[unknown.job_id]

    proc = cli("jobs", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    rows = {r["job"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows[broken.name]["status"] == "unreadable" and rows[broken.name]["reason"]
    assert rows[copy_id]["status"] == "done"


def test_jobs_under_a_home_with_uri_characters(tmp_path: Path) -> None:
    # Journals are read through file: URIs, where '#' and '%' mean something.
    home = tmp_path / "state #1 100%"
    copy_id = object_job(tmp_path, home)
    db_id = db_journal(home)
    proc = cli("jobs", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    rows = {r["job"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows[copy_id]["progress"] == {"done": 3}, rows[copy_id]
    assert rows[db_id]["status"] == "done" and "reason" not in rows[db_id]
    # No stray file where a '#' would have cut the path short.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("state")) == [
        home.name]


def test_no_jobs_says_where_it_looked(tmp_path: Path) -> None:
    proc = cli("jobs", home=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "no jobs under" in proc.stderr


def test_jobs_and_kinds_load_no_sdk() -> None:
    """Listing a hundred jobs must not pay for boto3 or psycopg: each kind imports its
    machinery only to resume."""
    code = ("import sys, cloudshift.kinds as k; assert set(k.KINDS) >= {'objects', 'db'}; "
            "print(sorted(m for m in ('boto3', 'psycopg', 'google.cloud.storage', "
            "'azure.storage.blob') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_resume_continues_an_object_job(tmp_path: Path) -> None:
    home, src, dst = tmp_path / "state", files(tmp_path / "src" / "photos", 3).parent, \
        tmp_path / "dst"
    (src / "orders.csv").write_text("id,eur\n1,20\n")
    dst.mkdir()
    (dst / "photos").write_text("a file where a folder is needed")
    proc = cli("copy", str(src), str(dst), "--json", home=home)
    assert proc.returncode == 1, proc.stderr
    first = json.loads(proc.stdout.splitlines()[-1])
    assert (first["copied"], first["failed"]) == (1, 3)
    (dst / "photos").unlink()

    proc = cli("resume", first["job_id"], "--transfers", "2", home=home)
    assert proc.returncode == 0, proc.stderr
    assert "copy: 3 copied" in proc.stdout and "1 already identical" in proc.stdout
    assert sorted(p.name for p in (dst / "photos").iterdir()) == ["f00.txt", "f01.txt",
                                                                  "f02.txt"]
    proc = cli("resume", first["job_id"], "--json", home=home)
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["kind"], summary["op"], summary["ok"]) == ("objects", "copy", True)
    assert (summary["copied"], summary["skipped"]) == (0, 4)


def test_resume_of_a_kind_this_version_does_not_know_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "state"
    spec = JobSpec("images", {"src": "registry-a/shop", "dst": "registry-b/shop"})
    JournalBase(home / "jobs" / spec.job_id).record_spec(spec)
    proc = cli("resume", spec.job_id, home=home)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'images' job" in lines[0] and "objects, db" in lines[0]


# Every CREATE INDEX on the target waits for an advisory lock the test holds, so a db copy
# stops right after loading its rows, deterministically. An event trigger is not a table:
# the target still counts as empty.
HOLD_INDEX_BUILDS = """
CREATE FUNCTION hold_index_builds() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242); END $$;
CREATE EVENT TRIGGER hold_index_builds ON ddl_command_start WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION hold_index_builds();
"""
ROWS = 5000


def test_resume_continues_an_interrupted_db_copy(pg_dbs: PgDbs, tmp_path: Path) -> None:
    import psycopg

    from test_db_copy import run_sql, scalar

    home = tmp_path / "state"
    run_sql(pg_dbs.src, f"CREATE TABLE big (id int PRIMARY KEY, grp int, label text); "
                        f"INSERT INTO big SELECT i, i % 7, 'row ' || i "
                        f"FROM generate_series(1, {ROWS}) i; CREATE INDEX big_grp ON big (grp);")
    run_sql(pg_dbs.dst, HOLD_INDEX_BUILDS)
    holder = psycopg.connect(pg_dbs.dst, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(4242)")
        proc = subprocess.Popen([sys.executable, "-m", "cloudshift.cli", "db", "copy",
                                 pg_dbs.src, pg_dbs.dst, "-j", "1"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "CLOUDSHIFT_HOME": str(home)})
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                   "AND datname = current_database()")
        deadline = time.monotonic() + 60
        while holder.execute(waiting).fetchone() != (1,):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the copy never reached its index build"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
    finally:
        holder.close()
    run_sql(pg_dbs.dst, "DROP EVENT TRIGGER hold_index_builds")

    listed = cli("jobs", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    (row,) = map(json.loads, listed.stdout.splitlines())
    assert (row["kind"], row["status"]) == ("db", "interrupted"), row
    assert PASSWORD not in listed.stdout

    # The object mover's options do not apply to a db job: said, not silently ignored.
    for flag, value in (("--part-size", "8MiB"), ("--retries", "5"), ("--bwlimit", "1MiB"),
                        ("--max-rps", "10"), ("--timeout", "30")):
        refused = cli("resume", row["job"], flag, value, "--transfers", "2", home=home)
        assert refused.returncode == 2, refused
        assert refused.stderr.strip().splitlines() == [
            f"cloudshift: error: {flag} applies to object jobs; a db job takes --transfers (its "
            "workers) and --json"], refused.stderr
    assert json.loads(cli("jobs", "--json", home=home).stdout)["status"] == "interrupted"

    proc = cli("resume", row["job"], "--json", home=home, env={"PGPASSWORD": PASSWORD})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["kind"], summary["op"], summary["ok"]) == ("db", "db-copy", True)
    assert summary["resumed"] is True and summary["rows"] == ROWS
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM big") == ROWS
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM pg_indexes WHERE indexname = 'big_grp'")
    assert PASSWORD not in proc.stdout + proc.stderr
    assert json.loads(cli("jobs", "--json", home=home).stdout)["status"] == "done"

    # A finished job has nothing to resume: one line, and its journal stays as it was.
    proc = cli("resume", row["job"], home=home, env={"PGPASSWORD": PASSWORD})
    assert proc.returncode == 2, proc
    (line,) = proc.stderr.strip().splitlines()
    assert re.fullmatch(rf"cloudshift: error: job {row['job']} finished at \d{{4}}-\d\d-\d\d "
                        r"\d\d:\d\d:\d\d UTC; nothing to resume \(run `cloudshift db copy` "
                        r"again for a new copy\)", line), line
    assert "--force" not in line
    again = json.loads(cli("jobs", "--json", home=home).stdout)
    assert again["status"] == "done" and again["src"] == row["src"]
    assert set(again["progress"]) == {"done"} and again["progress"]["done"] >= 1
