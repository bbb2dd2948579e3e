"""The job frame every kind plugs into: specs, the journal base, events, results."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from cloudshift.core.errors import UsageError
from cloudshift.jobs.events import EVENT_TYPES, Event, event
from cloudshift.jobs.journal import JournalBase, all_jobs, find_job, peek
from cloudshift.jobs.results import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ResultBase
from cloudshift.jobs.spec import JobSpec


def test_job_id_hashes_params_not_options() -> None:
    a = JobSpec("db", {"src": "postgresql://h/a", "dst": "postgresql://h/b"}, {"--no-acl": True})
    b = JobSpec("db", {"src": "postgresql://h/a", "dst": "postgresql://h/b"}, {"--no-acl": False})
    c = JobSpec("db", {"src": "postgresql://h/a", "dst": "postgresql://h/c"})
    assert a.job_id == b.job_id != c.job_id
    digest = hashlib.sha256(json.dumps(a.params, sort_keys=True).encode()).hexdigest()[:12]
    assert a.job_id == f"db-{digest}"
    assert JobSpec("objects", {"op": "copy"}, prefix="copy").job_id.startswith("copy-")


def test_differences_name_each_changed_option() -> None:
    then = JobSpec("db", {"src": "x"}, {"--no-acl": False, "--split-size": 1 << 30})
    now = JobSpec("db", {"src": "x"}, {"--no-acl": True, "--split-size": 1 << 30})
    assert now.differences(then) == ["--no-acl: was off, now on"]
    assert then.differences(then) == []
    assert JobSpec("db", {}, {"--x": ("a",)}).differences(JobSpec("db", {}, {"--x": ["a"]})) == []


def test_spec_round_trips_and_reads_legacy_specs() -> None:
    spec = JobSpec("objects", {"op": "sync", "include": ("*.jpg",)}, {"--delete": True}, "sync")
    back = JobSpec.from_json(spec.to_json())
    assert back.job_id == spec.job_id and back.options == {"--delete": True}
    old_objects = JobSpec.from_json(json.dumps({"op": "copy", "src": "a", "dst": "b",
                                                "include": [], "options": {}}))
    assert old_objects.kind == "objects" and old_objects.job_id.startswith("copy-")
    old_db = JobSpec.from_json('{"src": "postgresql://h/a", "dst": "postgresql://h/b", '
                               '"follow": true}')
    assert old_db.kind == "db" and old_db.options == {"--follow": True}


class _Kind(JournalBase):
    SCHEMA = "CREATE TABLE IF NOT EXISTS items (k TEXT PRIMARY KEY);"


class _Batched(_Kind):
    BATCHED = True


@pytest.mark.parametrize("cls", [_Kind, _Batched])
def test_journal_base_records_spec_and_runs(tmp_path: Path, cls: type[JournalBase],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path))
    spec = JobSpec("demo", {"a": 1})
    folder = tmp_path / "jobs" / spec.job_id
    journal = cls(folder)
    journal.record_spec(spec)
    journal.start_run()
    # Another process (cloudshift jobs) sees the run while it is running.
    info = peek(folder)
    assert info.spec is not None and info.spec.job_id == spec.job_id
    assert info.last_run is not None and info.last_run["status"] == "running"
    journal.finish_run("done", {"items": 3})
    journal.close()
    info = peek(folder)
    assert info.last_run is not None and info.last_run["summary"] == {"items": 3}
    assert [j.job_id for j in all_jobs()] == [spec.job_id]
    assert find_job(spec.job_id) == folder
    # The kind's own table exists beside the base's.
    db = sqlite3.connect(folder / "journal.db")
    assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)
    db.close()


def test_find_job_says_how_to_list_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path))
    with pytest.raises(UsageError, match="cloudshift jobs"):
        find_job("copy-000000000000")


def test_peek_tolerates_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "journal.db").write_bytes(b"not sqlite at all" * 100)
    info = peek(tmp_path)
    assert info.spec is None and info.last_run is None
    assert info.error  # says why, so `cloudshift jobs` can too


@pytest.mark.parametrize("name", ["a#b", "a?b", "50%", "x y"])
def test_journals_in_folders_with_uri_characters_are_read(tmp_path: Path, name: str) -> None:
    # Read-only opens go through file: URIs, where '#', '?' and '%' mean something.
    folder = tmp_path / name / "job"
    journal = _Kind(folder)
    journal.record_spec(JobSpec("demo", {"a": 1}))
    journal.start_run()
    journal.finish_run("done", {})
    journal.close()
    def outside() -> list[Path]:  # a reader of a WAL journal may add -shm/-wal beside it
        return sorted(p for p in tmp_path.rglob("*") if folder not in p.parents)

    before = outside()
    info = peek(folder)
    assert info.error is None and info.spec is not None
    assert info.last_run is not None and info.last_run["status"] == "done"
    assert outside() == before  # no stray file from a URI cut short


def test_a_0_1_ok_run_reads_as_done(tmp_path: Path) -> None:
    journal = _Kind(tmp_path)
    journal.start_run()
    journal.finish_run("ok", {})
    assert journal.last_status() == "done"
    journal.close()
    info = peek(tmp_path)
    assert info.last_run is not None and info.last_run["status"] == "done"


def test_events_have_one_json_shape() -> None:
    assert Event("copied", "a/b.jpg", 10, level="checksum").to_dict() == {
        "type": "copied", "key": "a/b.jpg", "size": 10, "level": "checksum"}
    assert event("table", "public.accounts", rows=3).to_dict() == {
        "type": "table", "key": "public.accounts", "rows": 3}
    assert {"copied", "table", "lag", "verified"} <= EVENT_TYPES


def test_exit_codes_follow_ok_and_interrupted() -> None:
    class R(ResultBase):
        def __init__(self, ok: bool, interrupted: bool = False) -> None:
            self._ok, self.interrupted = ok, interrupted

        @property
        def ok(self) -> bool:
            return self._ok

    assert (R(True).exit_code, R(False).exit_code, R(False, True).exit_code) == (
        EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED)
