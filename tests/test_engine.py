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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import cloudshift
from cloudshift.core.errors import Interrupted, UsageError
from cloudshift.core.uri import parse
from cloudshift.jobs.events import Event, EventSink
from cloudshift.jobs.executor import LostWork, Task, ThreadExecutor
from cloudshift.jobs.journal import JobInfo, find_job, peek
from cloudshift.jobs.spec import JobSpec
from cloudshift.storage import open_store
from cloudshift.storage.base import ByteStream, ObjectInfo, ObjectMeta, Store
from cloudshift.storage.local import LocalStore
from cloudshift.storage.memory import MemoryStore
from cloudshift.transfer import engine as engine_module
from cloudshift.transfer import worker as worker_module
from cloudshift.transfer.engine import Engine, run
from cloudshift.transfer.journal import object_spec, state_counts
from cloudshift.transfer.kind import OBJECTS
from cloudshift.transfer.options import TransferOptions
from cloudshift.transfer.results import TransferResult
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


def _write_tree(src: Path) -> None:
    """DATA as files under ``src``."""
    for key, data in DATA.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(data)


def _last_status(job_id: str) -> str | None:
    last = peek(find_job(job_id)).last_run
    return None if last is None else str(last["status"])


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def test_copy_to_disk_then_rerun_copies_nothing(mem: str, tmp_path: Path) -> None:
    fill(mem, DATA)
    dst = tmp_path / "dst"
    first = cloudshift.copy(mem, str(dst))
    assert first.ok and first.copied == len(DATA)
    assert first.levels["checksum"] == len(DATA)
    assert _last_status(first.job_id) == "done"  # one vocabulary for every kind's runs
    assert tree(dst) == DATA
    inodes = {k: (dst / k).stat().st_ino for k in DATA}
    second = cloudshift.copy(mem, str(dst))
    assert second.ok and second.copied == 0 and second.skipped == len(DATA)
    assert {k: (dst / k).stat().st_ino for k in DATA} == inodes  # not rewritten


def test_disk_to_disk_resume_skips_done_objects_via_journal(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write_tree(src)
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
    assert _last_status(res.job_id) == "failed"


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
    # The hook lets every piece finish as soon as the run stops (the 9th object completes,
    # the later ones are interrupted at their first byte), so the stop never needs its
    # deadline: a run that reached it waited for an outcome it already had. The deadline
    # is raised far above anything a loaded machine takes, so only that defect reaches it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "STOP_WAIT_S", 120.0)
        with pytest.raises(Interrupted):
            ctrl_c.engine.run()
    assert sorted(tree(tmp_path / "dst")) == sorted(objects)[:9]
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "interrupted"
    assert last["summary"]["elapsed_s"] < 60   # wide: the defect waits the full 120 s
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
    assert OBJECTS.describe(peek(info.folder)).status == "done"
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


# --- a run that fails ---------------------------------------------------------------------------

class _ListingBreaks(MemoryStore):
    """A memory store whose listing fails after ``AFTER`` keys, as a network listing does
    when its connection drops; it fails once ``landed`` is set (objects are at the
    destination by then)."""

    AFTER = 100
    landed = threading.Event()

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for n, info in enumerate(super().list(start_after)):
            if n == self.AFTER:
                assert self.landed.wait(30)
                raise OSError("connection reset while listing (injected)")
            yield info


class _Lands(LocalStore):
    """A local store that sets ``landed`` once the first batch of objects is written."""

    written: list[str] = []

    def write(self, key: str, stream: ByteStream, **kwargs: Any) -> ObjectInfo:
        stored = super().write(key, stream, **kwargs)
        self.written.append(key)   # list.append is atomic: the workers share it
        if len(self.written) >= engine_module.BATCH_OBJECTS:
            _ListingBreaks.landed.set()
        return stored


def test_an_error_mid_listing_records_what_landed_and_fails_the_run(
        mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = {f"k{i:03d}": os.urandom(50 + i) for i in range(300)}
    fill(mem, objects)
    dst = tmp_path / "dst"
    real_open = worker_module.open_store

    def open_store_(uri: str, **kwargs: Any) -> Store:
        store = {mem: _ListingBreaks, str(dst): _Lands}.get(uri)
        return real_open(uri, **kwargs) if store is None else store(parse(uri))

    monkeypatch.setattr(worker_module, "open_store", open_store_)
    monkeypatch.setattr(_ListingBreaks, "landed", threading.Event())
    monkeypatch.setattr(_Lands, "written", [])
    # Every outcome comes back at once after the stop; no loaded machine reaches this.
    monkeypatch.setattr(engine_module, "STOP_WAIT_S", 120.0)
    spec = object_spec("copy", mem, str(dst))
    # Fewer keys than the engine keeps in flight: nothing was collected during the march.
    assert _ListingBreaks.AFTER < 2 * engine_module.LOCAL_WORKERS * engine_module.BATCH_OBJECTS
    with pytest.raises(OSError, match="injected"):
        run(spec, TransferOptions(transfers=2))
    landed = tree(dst)
    assert len(landed) >= engine_module.BATCH_OBJECTS
    assert all(objects[k] == v for k, v in landed.items())
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "failed"
    summary = last["summary"]
    assert summary["ok"] is False
    assert summary["error"] == "connection reset while listing (injected)"
    # Every object that landed came back and is on record as done.
    assert summary["copied"] == state_counts(find_job(spec.job_id))["done"] == len(landed)
    # The next run (the listing mended) skips what is recorded and copies the rest.
    monkeypatch.setattr(worker_module, "open_store", real_open)
    again = run(spec, TransferOptions(transfers=2))
    assert again.ok and again.skipped == len(landed)
    assert again.copied == len(objects) - len(landed) and tree(dst) == objects
    assert _last_status(spec.job_id) == "done"


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

    def failed(self, work: list[Item], reported: int, reason: str) -> list[Outcome]:
        return self.task.failed(work, reported, reason)

    def cancel(self) -> None:
        self.task.cancel()


def test_another_executor_runs_the_job_from_plain_data(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write_tree(src)
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


def test_a_task_that_raises_fails_its_objects_and_the_run_ends(tmp_path: Path) -> None:
    # Each piece's task opens its stores from the config, and this destination cannot be
    # opened: the task raises instead of yielding outcomes. Before, the engine waited
    # forever for outcomes that never came.
    src = tmp_path / "src"
    _write_tree(src)

    def unopenable(task: Task[list[Item], Outcome], workers: int
                   ) -> ThreadExecutor[list[Item], Outcome]:
        assert isinstance(task, CopyTask)
        broken = CopyTask(replace(task.config, dst=StoreRef("bogus://nowhere")))
        return ThreadExecutor(broken, workers)

    spec = object_spec("copy", str(src), str(tmp_path / "dst"))
    engine = Engine(spec, TransferOptions(transfers=4), executors=unopenable)
    results: list[TransferResult] = []
    runner = threading.Thread(target=lambda: results.append(engine.run()), daemon=True)
    runner.start()
    runner.join(timeout=120)   # generous: the run takes well under a second
    assert not runner.is_alive(), "the run hung waiting for outcomes of a task that raised"
    (result,) = results
    assert not result.ok and result.exit_code == 1 and result.copied == 0
    assert sorted(f.key for f in result.failures) == sorted(DATA)
    assert all("unsupported URI scheme 'bogus://'" in f.reason for f in result.failures)
    assert _last_status(spec.job_id) == "failed"


class _Breaks:
    """A task that reports the first item of a piece, then raises."""

    def __call__(self, work: list[str]) -> Iterator[list[str]]:
        yield [f"{work[0]} ok"]
        raise RuntimeError("worker lost\n(injected)")

    def failed(self, work: list[str], reported: int, reason: str) -> list[str]:
        return [f"{item} failed: {reason}" for item in work[reported:]]

    def cancel(self) -> None:
        pass


def test_the_thread_executor_reports_every_item_of_a_piece_that_raised() -> None:
    # One worker, three pieces: shutdown(wait=True) waits for the two not yet started too.
    executor: ThreadExecutor[list[str], str] = ThreadExecutor(_Breaks(), 1)
    for piece in (["a", "b", "c"], ["d"], ["e", "f"]):
        executor.submit(piece)
    executor.shutdown(wait=True)
    got = executor.collect(0)
    assert sorted(got) == ["a ok", "b failed: worker lost (injected)",
                           "c failed: worker lost (injected)", "d ok", "e ok",
                           "f failed: worker lost (injected)"]



class _CannotSay(_Breaks):
    """Raises after the first item of a piece, and cannot say what it owes either."""

    def failed(self, work: list[str], reported: int, reason: str) -> list[str]:
        raise ValueError("no outcomes\n(injected)")


class _NoFailed:
    """A task from before Task.failed existed."""

    def __call__(self, work: list[str]) -> Iterator[list[str]]:
        raise RuntimeError("worker lost")

    def cancel(self) -> None:
        pass


@pytest.mark.parametrize(("task", "why"), [
    (_CannotSay(), "ValueError: no outcomes (injected)"),
    (_NoFailed(), "AttributeError: '_NoFailed' object has no attribute 'failed'"),
])
def test_a_task_that_cannot_fail_its_items_fails_the_collect_instead_of_hanging(
        task: Any, why: str) -> None:
    executor: ThreadExecutor[list[str], str] = ThreadExecutor(task, 1)
    executor.submit(["a", "b"])
    executor.shutdown(wait=True)
    reported = "a ok" if isinstance(task, _CannotSay) else None
    if reported is not None:   # what came back before the loss is returned first
        assert executor.collect(0) == [reported]
    with pytest.raises(LostWork) as lost:
        executor.collect(0)
    first = "RuntimeError: worker lost (injected)" if reported else "RuntimeError: worker lost"
    assert str(lost.value) == (f"a piece of work raised ({first}) and its task could not "
                               f"fail its items ({why})")
    assert executor.collect(0) == []   # raised once


def test_a_run_whose_task_cannot_fail_its_items_ends_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    _write_tree(src)
    # The lost items never come back: the stop does not wait the full 3 s for them.
    monkeypatch.setattr(engine_module, "STOP_WAIT_S", 0.1)

    class Mute:
        def __call__(self, work: list[Item]) -> Iterator[list[Outcome]]:
            raise OSError("cannot open the stores (injected)")

        def failed(self, work: list[Item], reported: int, reason: str) -> list[Outcome]:
            raise TypeError("failed() is broken (injected)")

        def cancel(self) -> None:
            pass

    spec = object_spec("copy", str(src), str(tmp_path / "dst"))
    engine = Engine(spec, TransferOptions(transfers=4),
                    executors=lambda task, workers: ThreadExecutor(Mute(), workers))
    raised: list[BaseException] = []

    def go() -> None:
        try:
            engine.run()
        except BaseException as exc:   # handed to the test thread
            raised.append(exc)

    runner = threading.Thread(target=go, daemon=True)
    runner.start()
    runner.join(timeout=120)   # generous: the run takes well under a second
    assert not runner.is_alive(), "the run hung waiting for items its task could not fail"
    (exc,) = raised
    assert isinstance(exc, LostWork)
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "failed"
    assert last["summary"]["error"] == (
        "a piece of work raised (OSError: cannot open the stores (injected)) and its task "
        "could not fail its items (TypeError: failed() is broken (injected))")


# --- the Python API of 0.1 ----------------------------------------------------------------------

def test_0_1_event_callbacks_still_work(mem: str, tmp_path: Path) -> None:
    # 0.1's callbacks imported these names from transfer.results and read ``ev.kind``.
    from cloudshift.transfer.results import Event as OldEvent
    from cloudshift.transfer.results import EventSink as OldSink

    assert OldEvent is Event
    assert OldSink is EventSink
    ev = Event("copied", "k", 3, level="checksum")
    assert ev.kind == "copied" == ev.type
    # Read-only, as every field: FrozenInstanceError (an AttributeError); Python 3.11's
    # frozen slots classes raise TypeError for any name that is not a field.
    with pytest.raises((AttributeError, TypeError)):
        ev.kind = "failed"  # type: ignore[misc]
    assert ev.kind == "copied"
    assert "kind" not in ev.to_dict()   # the JSON shape stays ``type``
    fill(mem, DATA)
    kinds: list[str] = []
    sink: OldSink = lambda e: kinds.append(e.kind)  # noqa: E731
    assert cloudshift.copy(mem, str(tmp_path / "dst"), on_event=sink).ok
    assert kinds.count("copied") == len(DATA) and "listed" in kinds


# --- a journal that cannot record ------------------------------------------------------------

def _tree_with_a_non_utf8_name(tmp_path: Path) -> tuple[Path, bytes]:
    """A source folder with five good files and one whose name is not UTF-8 (listed as a
    str with a lone surrogate, as os.fsdecode gives it)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"ok{i}.txt").write_bytes(b"x" * (i + 1))
    bad = b"bad\xff.bin"
    try:
        with open(os.path.join(os.fsencode(src), bad), "wb") as f:
            f.write(b"bad")
    except OSError:
        pytest.skip("this filesystem only holds UTF-8 names")
    return src, bad


def test_a_key_the_journal_cannot_hold_fails_that_object(tmp_path: Path) -> None:
    src, bad = _tree_with_a_non_utf8_name(tmp_path)
    dst = tmp_path / "dst"
    spec = object_spec("copy", str(src), str(dst))
    result = run(spec, TransferOptions(transfers=2))
    assert not result.ok and result.error is None and result.copied == 5
    (failure,) = result.failures
    assert failure.key == os.fsdecode(bad)
    assert failure.reason == ("key 'bad\\udcff.bin' is not valid UTF-8 (a file name in "
                              "another encoding?) and cannot be recorded in the journal; "
                              "skipped")
    assert sorted(os.listdir(dst)) == [f"ok{i}.txt" for i in range(5)]
    assert _last_status(spec.job_id) == "failed"
    assert state_counts(find_job(spec.job_id)) == {"done": 5}
    again = run(spec, TransferOptions(transfers=2))
    assert again.skipped == 5 and again.copied == 0 and len(again.failures) == 1


def test_a_row_the_journal_cannot_write_fails_the_run_not_its_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the check, the bad key reaches the batched done rows: every flush used to
    # raise, finish_run failed, the journal stayed open and the run `running`, with none of
    # the copied objects on record.
    src, _ = _tree_with_a_non_utf8_name(tmp_path)
    monkeypatch.setattr(engine_module, "unstorable", lambda key: None)
    spec = object_spec("copy", str(src), str(tmp_path / "dst"))
    with pytest.raises(UnicodeEncodeError):
        run(spec, TransferOptions(transfers=2))
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "failed" and last["finished"] is not None
    assert "surrogates not allowed" in last["summary"]["error"]
    assert state_counts(find_job(spec.job_id)) == {"done": 5}


def test_a_failing_destination_flush_or_executor_factory_ends_the_run_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    _write_tree(src)
    spec = object_spec("copy", str(src), str(tmp_path / "dst"))

    def no_executor(task: Task[list[Item], Outcome], workers: int
                    ) -> ThreadExecutor[list[Item], Outcome]:
        raise RuntimeError("no workers (injected)")

    with pytest.raises(RuntimeError, match="injected"):
        Engine(spec, TransferOptions(), executors=no_executor).run()
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "failed"
    assert last["summary"]["error"] == "no workers (injected)"

    def flush_fails(self: LocalStore) -> None:
        raise OSError("disk gone (injected)")

    monkeypatch.setattr(LocalStore, "flush", flush_fails)
    with pytest.raises(OSError, match="disk gone"):
        run(spec, TransferOptions())
    last = peek(find_job(spec.job_id)).last_run
    assert last is not None and last["status"] == "failed"
    assert last["summary"]["error"] == "disk gone (injected)"
    # Every object landed and is on record: the next run skips them all.
    assert state_counts(find_job(spec.job_id)) == {"done": len(DATA)}
