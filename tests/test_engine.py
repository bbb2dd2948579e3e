"""copy / sync / verify on local disk and memory: the engine's decisions and guarantees."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import cloudshift
from cloudshift.core.errors import UsageError
from cloudshift.jobs.events import Event
from cloudshift.storage import open_store
from cloudshift.storage.base import ObjectMeta
from cloudshift.storage.memory import MemoryStore
from cloudshift.transfer.engine import TransferOptions, run
from cloudshift.transfer.journal import JobSpec


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
    spec = JobSpec("copy", str(src), str(tmp_path / "dst"))
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
