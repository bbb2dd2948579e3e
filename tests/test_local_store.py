from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cloudshift.core.errors import UnsafeKeyError
from cloudshift.core.uri import parse
from cloudshift.storage.base import ByteStream, ObjectMeta
from cloudshift.storage.local import TMP_PREFIX, LocalStore


def put(store: LocalStore, key: str, data: bytes) -> None:
    store.write(key, ByteStream(iter([data])), size=len(data), meta=ObjectMeta(), checksums={})


def test_temporary_files_are_never_listed(tmp_path: Path) -> None:
    # (Listing order and listing from a key: test_store_conformance.py.)
    store = LocalStore(parse(str(tmp_path)))
    for key in ["a/c", "b"]:
        put(store, key, b"x")
    (tmp_path / f"{TMP_PREFIX}junk").write_bytes(b"partial")
    (tmp_path / "a" / f"{TMP_PREFIX}junk").write_bytes(b"partial")
    assert [o.key for o in store.list()] == ["a/c", "b"]
    assert [o.key for o in store.list(start_after="a/")] == ["a/c", "b"]


def test_listing_from_a_key_skips_the_folders_before_it(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # features.ranged_list: folders whose keys all sort before start_after are not read.
    store = LocalStore(parse(str(tmp_path)))
    for key in ["a/1", "a/2", "b/1", "b/2", "c/1"]:
        put(store, key, b"x")
    scanned: list[str] = []
    scandir = os.scandir

    def spy(path: Any) -> Any:
        scanned.append(os.path.relpath(path, tmp_path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    assert [o.key for o in store.list(start_after="b/1")] == ["b/2", "c/1"]
    assert scanned == [".", "b", "c"]


@pytest.mark.parametrize("key", ["../escape", "a/../../x", "/etc/passwd", "a//b", "dir/",
                                 "./a", "a/\x00b", "x" * 300])
def test_unsafe_keys_are_refused_and_nothing_escapes(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalStore(parse(str(root)))
    with pytest.raises(UnsafeKeyError):
        put(store, key, b"data")
    outside = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert outside == []


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))

    def broken() -> object:
        yield b"first part"
        raise ConnectionResetError("source went away")

    with pytest.raises(ConnectionResetError):
        store.write("k", ByteStream(broken()), size=100, meta=ObjectMeta(), checksums={})  # type: ignore[arg-type]
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []
    assert list(store.list()) == []
    store.flush()   # the end of a run removes this thread's (empty) staging folder
    assert list(tmp_path.iterdir()) == []


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))
    put(store, "a/b/c.txt", b"x")
    store.delete("a/b/c.txt")
    store.flush()   # as at the end of a run: the staging folder goes too
    assert list(tmp_path.iterdir()) == []
    assert tmp_path.exists()


def test_write_after_its_folder_was_pruned(tmp_path: Path) -> None:
    # The store remembers folders it made; a delete that prunes one must not break the
    # next write into it (sync --delete does both in one run).
    store = LocalStore(parse(str(tmp_path)))
    put(store, "a/b/one", b"1")
    store.delete("a/b/one")
    assert not (tmp_path / "a").exists()
    put(store, "a/b/two", b"2")
    assert (tmp_path / "a" / "b" / "two").read_bytes() == b"2"
    # Removed behind the store's back too.
    (tmp_path / "a" / "b" / "two").unlink()
    (tmp_path / "a" / "b").rmdir()
    put(store, "a/b/three", b"3")
    assert (tmp_path / "a" / "b" / "three").read_bytes() == b"3"
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["three"]


def test_key_naming_an_existing_folder_is_refused(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))
    put(store, "x/inner", b"1")
    with pytest.raises(UnsafeKeyError):
        put(store, "x", b"2")
    store.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_threads_stage_in_their_own_folders_and_leave_nothing(tmp_path: Path) -> None:
    # Creating files side by side in one folder serialises on the folder's lock, so each
    # writing thread stages its temporary files in a folder of its own at the root.
    store = LocalStore(parse(str(tmp_path)))
    seen: set[str] = set()
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(25):
            put(store, f"d/{n}-{i}", f"{n}-{i}".encode())
        with lock:
            seen.update(p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4   # one staging folder per thread, all hidden from listings
    assert sorted(o.key for o in store.list()) == sorted(
        f"d/{n}-{i}" for n in range(4) for i in range(25))
    assert (tmp_path / "d" / "3-24").read_bytes() == b"3-24"
    store.flush()
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_staging_left_by_a_dead_process_is_cleared(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store = LocalStore(parse(str(tmp_path)))
    host = store._host
    stale = tmp_path / f"{TMP_PREFIX}{host}-{dead.stdout.strip()}-abcdef-w0"
    stale.mkdir()
    (stale / "7").write_bytes(b"half a file")
    alive = tmp_path / f"{TMP_PREFIX}{host}-{os.getppid()}-abcdef-w0"   # a running process
    alive.mkdir()
    other_host = tmp_path / f"{TMP_PREFIX}zzzzzz-{dead.stdout.strip()}-abcdef-w0"
    other_host.mkdir()
    put(store, "k", b"v")
    assert not stale.exists()
    assert alive.exists() and other_host.exists()
    assert [o.key for o in store.list()] == ["k"]


def test_without_a_staging_folder_temporary_files_stay_in_place(tmp_path: Path) -> None:
    # Where no staging folder can be made (a root we may not write in) or the target folder
    # is on another filesystem, the temporary file goes next to its object.
    store = LocalStore(parse(str(tmp_path)))
    store._staging_ok = False
    put(store, "a/b/k", b"data")
    assert (tmp_path / "a" / "b" / "k").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]   # nothing staged at the root
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["k"]


def test_staging_works_again_after_a_flush(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))
    put(store, "one", b"1")
    [first] = [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
    (first / "busy").write_bytes(b"a write still running")   # so flush() cannot remove it
    store.flush()
    assert first.exists()
    put(store, "two", b"2")   # the store used again (e.g. a second pass)
    staged = {p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)}
    assert store._staging_ok and len(staged - {first}) == 1   # a new folder, not a clash
    assert sorted(o.key for o in store.list()) == ["one", "two"]
