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
