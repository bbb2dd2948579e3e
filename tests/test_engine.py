"""copy / sync / verify on local disk and memory: the engine's decisions and guarantees."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import cloudshift
from cloudshift.core.errors import Interrupted, UsageError
from cloudshift.jobs.events import Event
from cloudshift.jobs.executor import Task, ThreadExecutor
from cloudshift.jobs.journal import JobInfo, find_job, peek
from cloudshift.jobs.spec import JobSpec
from cloudshift.storage import open_store
from cloudshift.storage.base import ObjectMeta
from cloudshift.storage.memory import MemoryStore
from cloudshift.transfer.engine import STOP_WAIT_S, Engine, run
from cloudshift.transfer.journal import object_spec
from cloudshift.transfer.kind import OBJECTS
from cloudshift.transfer.options import TransferOptions
from cloudshift.transfer.worker import CopyTask, Item, Outcome, StoreRef, worker_for


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))


@pytest.fixture
def mem() -> Iterator[str]:
    yield f"mem://m{uuid.uuid4().hex[:8]}"


def fill(uri: str, objects: dict[str, bytes]) -> MemoryStore:
    store = open_store(uri)
    assert isinstance(store, MemoryStore)
    for key, data in objects.items():
        store.put_bytes(key, data, ObjectMeta(content_type="text/plain"))
    return store


DATA = {"a.txt": b"alpha", "dir/b.bin": os.urandom(3000), "dir/sub/c": b"",
        "ünï cödé/spaced name.txt": b"unicode", "z": b"zz"}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def test_copy_to_disk_then_rerun_copies_nothing(mem: str, tmp_path: Path) -> None:
    fill(mem, DATA)
    dst = tmp_path / "dst"
    first = cloudshift.copy(mem, str(dst))
    assert first.ok and first.copied == len(DATA)
    assert first.levels["checksum"] == len(DATA)
    assert tree(dst) == DATA
    inodes = {k: (dst / k).stat().st_ino for k in DATA}
    second = cloudshift.copy(mem, str(dst))
    assert second.ok and second.copied == 0 and second.skipped == len(DATA)
    assert {k: (dst / k).stat().st_ino for k in DATA} == inodes  # not rewritten


def test_disk_to_disk_resume_skips_done_objects_via_journal(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for key, data in DATA.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(data)
    assert cloudshift.copy(str(src), str(dst)).copied == len(DATA)
    (src / "new.txt").write_bytes(b"new")
    again = cloudshift.copy(str(src), str(dst))
    assert again.copied == 1 and again.skipped == len(DATA)


def test_dry_run_changes_nothing(mem: str, tmp_path: Path) -> None:
    fill(mem, DATA)
    events: list[Event] = []
    res = cloudshift.copy(mem, str(tmp_path / "dst"), dry_run=True, on_event=events.append)
    assert res.dry_run and res.planned == len(DATA)
    assert res.planned_bytes == sum(len(v) for v in DATA.values())
    assert not (tmp_path / "dst").exists()
    assert not (tmp_path / "state").exists()  # not even a journal
    assert sorted(e.key for e in events if e.type == "would-copy") == sorted(DATA)


def test_sync_delete_removes_extras_and_plain_sync_keeps_them(mem: str, tmp_path: Path) -> None:
    fill(mem, DATA)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "extra.txt").write_bytes(b"keep me unless --delete")
    res = cloudshift.sync(mem, str(dst))
    assert res.ok and (dst / "extra.txt").exists() and res.deleted == 0
    dry = cloudshift.sync(mem, str(dst), delete=True, dry_run=True)
    assert dry.to_delete == 1 and (dst / "extra.txt").exists()
    res = cloudshift.sync(mem, str(dst), delete=True)
    assert res.deleted == 1 and not (dst / "extra.txt").exists()
    assert tree(dst) == DATA


def test_include_exclude(mem: str, tmp_path: Path) -> None:
    fill(mem, {"img/a.jpg": b"1", "img/deep/b.jpg": b"2", "img/c.png": b"3", "log.txt": b"4"})
    dst = tmp_path / "dst"
    res = cloudshift.copy(mem, str(dst), include=["*.jpg", "*.txt"], exclude=["img/deep/**"])
    assert res.ok
    assert sorted(tree(dst)) == ["img/a.jpg", "log.txt"]


def test_changed_source_object_is_recopied(mem: str, tmp_path: Path) -> None:
    store = fill(mem, {"k": b"version one"})
    dst = tmp_path / "dst"
    cloudshift.copy(mem, str(dst))
    store.put_bytes("k", b"version two")
    res = cloudshift.copy(mem, str(dst))
    assert res.copied == 1 and (dst / "k").read_bytes() == b"version two"


def test_same_size_different_bytes_is_recopied(mem: str, tmp_path: Path) -> None:
    fill(mem, {"k": b"aaaa"})
    dst = tmp_path / "dst"
    cloudshift.copy(mem, str(dst))
    (dst / "k").write_bytes(b"bbbb")  # same size, other bytes, behind the journal's back
    os.utime(dst / "k", (1, 1))
    res = cloudshift.copy(mem, str(dst))
    assert res.copied == 1 and (dst / "k").read_bytes() == b"aaaa"


def test_corruption_found_by_verify_and_repaired_by_sync(mem: str, tmp_path: Path) -> None:
    fill(mem, DATA)
    dst = tmp_path / "dst"
    cloudshift.copy(mem, str(dst))
    assert cloudshift.verify(mem, str(dst)).ok
    data = bytearray((dst / "dir/b.bin").read_bytes())
    data[100] ^= 0xFF
    (dst / "dir/b.bin").write_bytes(bytes(data))
    (dst / "z").unlink()
    (dst / "stray").write_bytes(b"?")
    report = cloudshift.verify(mem, str(dst))
    assert not report.ok
    assert [o.key for o in report.mismatched] == ["dir/b.bin"]
    assert report.mismatched[0].level == "checksum"
    assert [o.key for o in report.missing] == ["z"]
    assert [o.key for o in report.extra] == ["stray"]
    fixed = cloudshift.sync(mem, str(dst), delete=True)
    assert fixed.ok and fixed.copied == 2 and fixed.deleted == 1
    assert cloudshift.verify(mem, str(dst)).ok and tree(dst) == DATA


def test_large_object_goes_in_parts_and_memory_stays_bounded(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    blob = os.urandom(3 * 1024 * 1024 + 17)
    (src / "big").write_bytes(blob)
    spec = object_spec("copy", str(src), str(tmp_path / "dst"))
    res = run(spec, TransferOptions(part_size=256 * 1024))
    assert res.ok and (tmp_path / "dst" / "big").read_bytes() == blob


def test_thousands_of_objects_under_one_prefix(mem: str) -> None:
    objects = {f"p/{i:05d}": str(i).encode() for i in range(3000)}
    fill(mem, objects)
    dst = f"mem://d{uuid.uuid4().hex[:8]}"
    res = cloudshift.copy(mem, dst, transfers=8)
    assert res.ok and res.copied == 3000
    assert [o.key for o in cloudshift.ls(dst)] == sorted(objects)
    assert cloudshift.verify(mem, dst).levels["checksum"] == 3000


def test_empty_source(mem: str, tmp_path: Path) -> None:
    open_store(mem)
    res = cloudshift.copy(mem, str(tmp_path / "dst"))
    assert res.ok and res.copied == 0 and res.listed == 0


def test_unsafe_keys_fail_per_object_and_others_complete(mem: str, tmp_path: Path) -> None:
    fill(mem, {"../evil": b"x", "folder/": b"", "good": b"g"})
    dst = tmp_path / "dst"
    res = cloudshift.copy(mem, str(dst))
    assert not res.ok
    assert sorted(f.key for f in res.failures) == ["../evil", "folder/"]
    assert all("refused" in f.reason or "skipped" in f.reason for f in res.failures)
    assert tree(dst) == {"good": b"g"}
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(("src", "dst"), [("mem://b/a", "mem://b/a/inner"),
                                          ("mem://b/a/inner", "mem://b/a"),
                                          ("mem://b/a", "mem://b/a")])
def test_overlapping_src_and_dst_refused(src: str, dst: str) -> None:
    with pytest.raises(UsageError):
        cloudshift.copy(src, dst)


def test_overlapping_paths_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(UsageError):
        cloudshift.copy(str(tmp_path), str(tmp_path / "x" / ".." / "x" / "y"))


def test_metadata_and_mtime_survive_memory_to_memory(mem: str) -> None:
    src = open_store(mem)
    assert isinstance(src, MemoryStore)
    meta = ObjectMeta(content_type="image/jpeg", content_encoding="gzip",
                      content_disposition="inline", cache_control="max-age=60",
                      user={"sku": "SKU-1", "note": "naïve"})
    src.put_bytes("k", b"data", meta)
    dst = f"mem://d{uuid.uuid4().hex[:8]}"
    cloudshift.copy(mem, dst)
    got = open_store(dst).stat("k")
    assert got is not None and got.meta is not None
    assert got.meta.content_type == "image/jpeg" and got.meta.user["note"] == "naïve"
    assert got.meta.mtime is not None


def test_local_source_gets_a_content_type_from_its_name(tmp_path: Path, mem: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "photo.jpg").write_bytes(b"\xff\xd8")
    (src / "noext").write_bytes(b"?")
    cloudshift.copy(str(src), mem)
    store = open_store(mem)
    jpg, other = store.stat("photo.jpg"), store.stat("noext")
    assert jpg is not None and jpg.meta is not None and jpg.meta.content_type == "image/jpeg"
    assert other is not None and other.meta is not None and other.meta.content_type is None


# --- the object mover as a kind of job ------------------------------------------------------

def test_job_ids_are_those_cloudshift_0_1_gave() -> None:
    # Computed by the 0.1 JobSpec (transfer/journal.py before the job frame): a re-run of
    # the same command after an upgrade must find its old journal.
    spec = object_spec("sync", "s3://shop-assets/images", "gs://shop-assets", delete=True,
                       include=["*.jpg", "**/*.png"], exclude=("tmp/**",),
                       src_endpoint="http://127.0.0.1:9000")
    assert spec.job_id == "sync-2e6526f32dd9"
    assert object_spec("copy", "/data/src", "mem://b/x").job_id == "copy-afc3ddcff0c5"
    assert spec.kind == "objects" and spec.include == ("*.jpg", "**/*.png")


class _CtrlC:
    """Ctrl-C in the coordinating thread when the 5th object is recorded copied, while the
    (one) worker is held at its 9th object until the run is stopping: the first 8 objects
    land, the 9th finishes during the stop, every later one is interrupted."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.copied = self.started = 0
        self.held = threading.Event()

    def __call__(self, e: Event) -> None:
        assert self.engine is not None
        if e.type == "bytes":               # a worker thread, streaming an object
            self.started += 1
            if self.started == 9:
                self.held.set()
                assert self.engine.worker.stopping.wait(30)
        elif e.type == "copied":            # the coordinating thread, recording
            self.copied += 1
            if self.copied == 5:
                assert self.held.wait(30)
                raise KeyboardInterrupt


def _interrupted_job(mem: str, tmp_path: Path, n: int = 40) -> tuple[str, dict[str, bytes]]:
    objects = {f"k{i:03d}": os.urandom(100 + i) for i in range(n)}
    fill(mem, objects)
    spec = object_spec("copy", mem, str(tmp_path / "dst"))
    ctrl_c = _CtrlC()
    ctrl_c.engine = Engine(spec, TransferOptions(transfers=1), on_event=ctrl_c)
    with pytest.raises(Interrupted):
        ctrl_c.engine.run()
    assert sorted(tree(tmp_path / "dst")) == sorted(objects)[:9]
    # Every outcome came back before the stop's deadline: none was waited for in vain.
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["summary"]["elapsed_s"] < STOP_WAIT_S
    return spec.job_id, objects


def test_interrupted_job_is_described_and_resumed_by_its_kind(mem: str, tmp_path: Path
                                                              ) -> None:
    job_id, objects = _interrupted_job(mem, tmp_path)
    info = peek(find_job(job_id))
    row = OBJECTS.describe(info)
    assert (row.job_id, row.kind, row.op, row.src, row.dst, row.status) == (
        job_id, "objects", "copy", mem, str(tmp_path / "dst"), "interrupted")
    done = row.progress.get("done", 0)
    # The three objects reported with the 5th but not yet recorded when Ctrl-C came are on
    # disk without a record; the resume finds them identical (it hashes both sides) and
    # skips them too.
    landed = len(tree(tmp_path / "dst"))
    assert (done, landed) == (6, 9)
    events: list[Event] = []
    result = OBJECTS.resume(info, {"transfers": 3, "bwlimit": None, "jobs": 9}, events.append)
    assert isinstance(result, cloudshift.TransferResult)
    assert result.ok and result.exit_code == 0
    assert result.copied == len(objects) - landed and result.skipped == landed
    assert sum(e.type == "copied" for e in events) == result.copied
    assert tree(tmp_path / "dst") == objects
    assert OBJECTS.describe(peek(info.folder)).status == "ok"
    # Objects found identical are skipped, not recorded: done counts what this job sent.
    assert OBJECTS.describe(peek(info.folder)).progress == {"done": done + result.copied}


def test_resume_refuses_bad_overrides_and_other_kinds(mem: str, tmp_path: Path) -> None:
    job_id, _ = _interrupted_job(mem, tmp_path, n=10)
    info = peek(find_job(job_id))
    with pytest.raises(UsageError, match="--part-size must be at least 5 MiB"):
        OBJECTS.resume(info, {"part_size": 1024}, None)
    db_job = JobInfo("db-0123456789ab", tmp_path, JobSpec("db", {"src": "a", "dst": "b"}),
                     None)
    with pytest.raises(UsageError, match="is a db job"):
        OBJECTS.resume(db_job, {}, None)


def test_a_0_1_journal_opens_and_resumes(mem: str, tmp_path: Path) -> None:
    job_id, objects = _interrupted_job(mem, tmp_path)
    folder = find_job(job_id)
    # The spec as cloudshift 0.1 wrote it: the command's fields, flat, without a kind.
    legacy = json.dumps({"op": "copy", "src": mem, "dst": str(tmp_path / "dst"),
                         "delete": False, "include": [], "exclude": [], "src_endpoint": None,
                         "dst_endpoint": None, "options": {}}, sort_keys=True)
    db = sqlite3.connect(folder / "journal.db")
    db.execute("UPDATE job SET v=? WHERE k='spec'", (legacy,))
    db.commit()
    db.close()
    journal = cloudshift.find_job(job_id)
    spec = journal.spec()
    journal.close()
    assert spec is not None and (spec.op, spec.src, spec.job_id) == ("copy", mem, job_id)
    landed = len(tree(tmp_path / "dst"))
    result = cloudshift.resume(job_id)
    assert result.ok and result.skipped == landed and result.copied == len(objects) - landed
    assert tree(tmp_path / "dst") == objects


# --- the executor seam ------------------------------------------------------------------------

class _Pickled:
    """A task as another process would run it: the task, every batch and every outcome go
    through pickle, so no live client, lock or callback can travel with them."""

    def __init__(self, task: Task[list[Item], Outcome]) -> None:
        self.task: CopyTask = pickle.loads(pickle.dumps(task))
        self.batches = 0

    def __call__(self, work: list[Item]) -> Iterator[list[Outcome]]:
        self.batches += 1
        for outcomes in self.task(pickle.loads(pickle.dumps(work))):
            yield pickle.loads(pickle.dumps(outcomes))

    def cancel(self) -> None:
        self.task.cancel()


def test_another_executor_runs_the_job_from_plain_data(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for key, data in DATA.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(data)
    made: list[_Pickled] = []

    def elsewhere(task: Task[list[Item], Outcome], workers: int
                  ) -> ThreadExecutor[list[Item], Outcome]:
        made.append(_Pickled(task))
        return ThreadExecutor(made[-1], workers)

    spec = object_spec("copy", str(src), str(dst))
    engine = Engine(spec, TransferOptions(transfers=4), executors=elsewhere)
    result = engine.run()
    assert result.ok and result.copied == len(DATA) and result.levels["checksum"] == len(DATA)
    assert tree(dst) == DATA
    # The batches ran on stores the task opened from its StoreRefs, not on the engine's.
    (task,) = made
    assert task.batches >= 1
    remote = worker_for(engine.config)
    assert remote is not engine.worker and remote.dst is not engine.dst
    assert remote.config.dst == StoreRef(str(dst))
    # The journal, written by the coordinator alone, knows every object: a re-run skips all.
    again = run(spec, TransferOptions())
    assert again.copied == 0 and again.skipped == len(DATA)


def test_the_kind_loads_neither_engine_nor_sdks() -> None:
    # `cloudshift jobs` describes every object job through OBJECTS: that must stay cheap.
    code = ("import sys, cloudshift.transfer.kind; print(sorted(m for m in sys.modules if "
            "m.startswith(('boto3', 'botocore', 'google.cloud', 'azure', 'tenacity', "
            "'cloudshift.transfer.engine', 'cloudshift.transfer.worker'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
