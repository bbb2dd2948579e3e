from __future__ import annotations

from pathlib import Path

import pytest

from cloudshift.errors import UnsafeKeyError
from cloudshift.storage.base import ByteStream, ObjectMeta
from cloudshift.storage.local import TMP_PREFIX, LocalStore
from cloudshift.uri import parse


def put(store: LocalStore, key: str, data: bytes) -> None:
    store.write(key, ByteStream(iter([data])), size=len(data), meta=ObjectMeta(), checksums={})


def test_listing_is_in_code_point_order(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))
    for key in ["a/c", "a-b", "a0", "b", "a/b/z", "é", "z ü/x"]:
        put(store, key, b"x")
    (tmp_path / f"{TMP_PREFIX}junk").write_bytes(b"partial")  # never listed
    keys = [o.key for o in store.list()]
    assert keys == sorted(keys)
    assert set(keys) == {"a/c", "a-b", "a0", "b", "a/b/z", "é", "z ü/x"}


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
    assert list(tmp_path.iterdir()) == []


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(parse(str(tmp_path)))
    put(store, "a/b/c.txt", b"x")
    store.delete("a/b/c.txt")
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
