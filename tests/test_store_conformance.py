"""One conformance suite for every storage backend, as rclone's fstest/fstests.

Every case runs on every backend: local disk, memory, S3 on moto, GCS on
gcp-storage-emulator and Azure Blob on Azurite (the session servers of tests/servers/).
A new backend gets the whole suite by adding one parameter to the ``backend`` fixture below
(and one column to docs/backends/README.md, which ``test_features_table_matches_the_code``
holds to the declared features). What only one backend does (S3 multipart ETags, the lean
GET, Azure block lists, the emulators' gaps...) stays in that backend's own test file.

Objects are small, and the large one only just larger than the backend's smallest part, so
the suite stays quick.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloudshift.core.checksums import hash_bytes
from cloudshift.core.errors import ConfigError, IntegrityError, SourceChangedError
from cloudshift.core.uri import parse
from cloudshift.storage import memory, open_store
from cloudshift.storage.azure import AzureStore
from cloudshift.storage.base import (
    FEATURE_VERBS,
    ByteStream,
    Features,
    ObjectInfo,
    ObjectMeta,
    Store,
)
from cloudshift.storage.gcs import GCSStore
from cloudshift.storage.local import LocalStore
from cloudshift.storage.memory import MemoryStore
from cloudshift.storage.s3 import S3Store
from servers.azure import AzureServer
from servers.gcs import GCSServer
from servers.s3 import S3Server

KIB = 1024
MIB = 1024 * KIB
ROOT = "root/"
README = Path(__file__).resolve().parents[1] / "docs" / "backends" / "README.md"

# The class behind each parameter of the ``backend`` fixture (for the features table).
CLASSES: dict[str, type[Store]] = {"local": LocalStore, "memory": MemoryStore, "s3": S3Store,
                                   "gcs": GCSStore, "azure": AzureStore}


@dataclass
class Backend:
    """One backend under test, in a place of its own: a fresh folder or memory store, or a
    fresh prefix of a bucket (container) shared by the module's tests, as creating buckets
    and clients is what costs time here."""

    name: str
    open: Callable[[str], Store]
    """A store on ``prefix`` of this test's place ("" for all of it)."""
    part_size: int
    """The smallest part size the backend honours: larger objects go up in parts."""
    missing: Callable[[], Store] | None
    """A store whose root does not exist (None where a root cannot be missing)."""
    leave_incomplete: Callable[[str], None] | None
    """Start an upload of a key under the root and abandon it, as a killed run does (None
    where an unfinished upload leaves nothing)."""

    @property
    def store(self) -> Store:
        return self.open(ROOT)


def _place() -> str:
    return f"t-{uuid.uuid4().hex[:12]}/"


def _local(request: pytest.FixtureRequest) -> Backend:
    folder: Path = request.getfixturevalue("tmp_path")
    return Backend("local", lambda prefix: LocalStore(parse(str(folder / prefix))),
                   part_size=64 * KIB,
                   missing=lambda: LocalStore(parse(str(folder / "no-such-folder"))),
                   leave_incomplete=None)


def _memory(request: pytest.FixtureRequest) -> Backend:
    name = f"conformance-{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: memory.reset(name))
    return Backend("memory", lambda prefix: MemoryStore(parse(f"mem://{name}/{prefix}")),
                   part_size=64 * KIB, missing=None, leave_incomplete=None)


def _module_bucket(create: Callable[[str], object]) -> str:
    name = f"conformance-{uuid.uuid4().hex[:12]}"
    create(name)
    return name


@pytest.fixture(scope="module")
def s3_module_bucket(s3_server: S3Server) -> str:
    return _module_bucket(lambda name: s3_server.client().create_bucket(Bucket=name))


@pytest.fixture(scope="module")
def gcs_module_bucket(gcs_server: GCSServer) -> str:
    return _module_bucket(gcs_server.client().create_bucket)


@pytest.fixture(scope="module")
def azure_module_container(azure_server: AzureServer) -> str:
    return _module_bucket(azure_server.client().create_container)


def _cloud(name: str, scheme: str, bucket: str, place: str, part_size: int,
           leave_incomplete: Callable[[str], None] | None = None) -> Backend:
    return Backend(name, lambda prefix: open_store(f"{scheme}://{bucket}/{place}{prefix}"),
                   part_size=part_size,
                   missing=lambda: open_store(f"{scheme}://no-such-bucket-conformance/"),
                   leave_incomplete=leave_incomplete)


def _s3(request: pytest.FixtureRequest) -> Backend:
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_module_bucket")
    place = _place()

    def leave_incomplete(key: str) -> None:
        client, name = server.client(), place + ROOT + key
        upload = client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
        client.upload_part(Bucket=bucket, Key=name, UploadId=upload, PartNumber=1,
                           Body=b"part one")

    return _cloud("s3", "s3", bucket, place, 5 * MIB, leave_incomplete)  # S3's smallest part


def _gcs(request: pytest.FixtureRequest) -> Backend:
    bucket: str = request.getfixturevalue("gcs_module_bucket")
    # Resumable upload chunks are multiples of 256 KiB.
    return _cloud("gcs", "gs", bucket, _place(), 256 * KIB)


def _azure(request: pytest.FixtureRequest) -> Backend:
    server: AzureServer = request.getfixturevalue("azure_server")
    container: str = request.getfixturevalue("azure_module_container")
    place = _place()

    def leave_incomplete(key: str) -> None:
        blob = server.client().get_blob_client(container, place + ROOT + key)
        blob.stage_block("YmxvY2stMDAwMQ==", b"block one")

    return _cloud("azure", "az", container, place, 256 * KIB, leave_incomplete)


_BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {
    "local": _local, "memory": _memory, "s3": _s3, "gcs": _gcs, "azure": _azure}


@pytest.fixture(params=list(_BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend in turn; a server is started (once per session) only when its
    backend's turn comes. A new backend: one entry in _BACKENDS (and CLASSES)."""
    return _BACKENDS[request.param](request)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


# -- helpers ----------------------------------------------------------------------------------


def _chunks(data: bytes, step: int = 64 * KIB) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


def _data(size: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def _write(store: Store, key: str, data: bytes, *, meta: ObjectMeta | None = None,
           checksums: dict[str, str] | None = None, size: int | None = None,
           part_size: int = 16 * MIB) -> ObjectInfo:
    return store.write(key, ByteStream(_chunks(data)), size=len(data) if size is None else size,
                       meta=meta or ObjectMeta(), checksums=checksums or {},
                       part_size=part_size)


def _read(store: Store, key: str, chunk_size: int = 64 * KIB) -> bytes:
    return b"".join(store.read(key, chunk_size))


def _keys(store: Store, start_after: str | None = None) -> list[str]:
    return [info.key for info in store.list(start_after=start_after)]


def _agree(reported: Mapping[str, str], data: bytes) -> None:
    """Every checksum a store reports is the one of ``data``."""
    truth = hash_bytes(data)
    for alg, value in reported.items():
        assert value == truth[alg], f"{alg} reported {value}, the bytes have {truth[alg]}"


MTIME = datetime(2021, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)
META = ObjectMeta(content_type="text/plain", content_encoding="identity",
                  content_disposition='attachment; filename="a.txt"',
                  cache_control="max-age=60", content_language="en",
                  user={"owner": "ana", "origin": "s3://b/k"}, mtime=MTIME)


def _same_time(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs((a - b).total_seconds()) < 1e-3


# -- round trips ------------------------------------------------------------------------------


def test_write_read_stat_round_trip_with_metadata_and_mtime(store: Store) -> None:
    data = _data(3000)
    written = store.write("a/b.txt", ByteStream(_chunks(data, 1000)), size=len(data),
                          meta=META, checksums={})
    assert written.key == "a/b.txt" and written.size == len(data)
    pieces = list(store.read("a/b.txt", chunk_size=1000))
    assert b"".join(pieces) == data and max(len(p) for p in pieces) <= 1000
    info = store.stat("a/b.txt")
    assert info is not None and info.key == "a/b.txt" and info.size == len(data)
    assert info.mtime is not None and info.mtime.tzinfo is not None
    assert info.meta is not None and _same_time(info.meta.mtime, MTIME)
    if store.features.metadata:
        assert dataclasses.replace(info.meta, mtime=None) == dataclasses.replace(META,
                                                                                 mtime=None)


def test_open_gives_info_with_meta_and_the_bytes(store: Store) -> None:
    data = _data(2000, seed=2)
    _write(store, "k", data, meta=META)
    info, chunks = store.open("k")
    assert info.key == "k" and info.size == len(data)
    assert info.meta is not None and _same_time(info.meta.mtime, MTIME)
    assert b"".join(chunks) == data


def test_checksums_reported_match_the_bytes(store: Store) -> None:
    data = _data(5000, seed=3)
    written = store.write("sum", ByteStream(_chunks(data)), size=len(data), meta=ObjectMeta(),
                          checksums=hash_bytes(data))
    assert written.checksums, "a write reports at least one checksum of what it stored"
    _agree(written.checksums, data)
    stat = store.stat("sum")
    assert stat is not None
    _agree(stat.checksums, data)
    [listed] = list(store.list())
    _agree(listed.checksums, data)


def test_empty_object(store: Store) -> None:
    written = _write(store, "empty", b"", checksums=hash_bytes(b""))
    assert written.size == 0
    assert _read(store, "empty") == b""
    stat = store.stat("empty")
    assert stat is not None and stat.size == 0
    _agree(stat.checksums, b"")
    assert _keys(store) == ["empty"]


def test_large_object_in_parts(backend: Backend, store: Store) -> None:
    part = backend.part_size
    data = _data(part + part // 2 + 123, seed=4)
    store.limit_parts_in_memory(1)  # one part at a time must still get there
    written = store.write("big", ByteStream(_chunks(data)), size=len(data), meta=META,
                          checksums=hash_bytes(data), part_size=part)
    assert written.size == len(data)
    _agree(written.checksums, data)
    assert _read(store, "big", chunk_size=256 * KIB) == data
    stat = store.stat("big")
    assert stat is not None and stat.size == len(data)
    assert stat.meta is not None and _same_time(stat.meta.mtime, MTIME)
    _agree(stat.checksums, data)


# -- listing ----------------------------------------------------------------------------------

# Code-point order, which differs from UTF-16 order ("\ufffd" < "\U0001f600") and puts
# "a-b" before "a/b" before "a0" (a folder walk must sort "a/" as a name).
INSIDE = ["B", "a-b", "a/b", "a/c/d", "a0", "z", "é", "\ue000", "\ufffd", "\U0001f600"]


def test_list_is_sorted_relative_and_under_the_prefix(backend: Backend, store: Store) -> None:
    for key in reversed(INSIDE):
        _write(store, key, key.encode())
    whole = backend.open("")
    for key in ["root-x", "rootx/a", "other/b", "a"]:  # beside the root, never in it
        _write(whole, key, b"outside")
    listed = list(store.list())
    assert [info.key for info in listed] == sorted(INSIDE)
    assert {info.key: info.size for info in listed} == {k: len(k.encode()) for k in INSIDE}
    assert _keys(whole) == sorted(["a", "other/b", "root-x", "rootx/a"]
                                  + [ROOT + k for k in INSIDE])


def test_list_from_a_key(store: Store) -> None:
    # Every backend honours start_after; where features.ranged_list the server starts there.
    for key in INSIDE:
        _write(store, key, b"x")
    for start in ["", "B", "a", "a/", "a/b", "a/c", "a/c/d", "a1", "é", "\U0001f600",
                  "\U0010ffff"]:
        assert _keys(store, start_after=start) == [k for k in sorted(INSIDE) if k > start], (
            f"listing after {start!r}")
    assert _keys(store, start_after=None) == sorted(INSIDE)


ODD_KEYS = ["a b.txt", "ünï/çødé ☃.txt", "x+y=z&?%20#.txt", "emoji 😀", "deep/er/ key ",
            "日本語/ファイル", "semi;colon:at@", "~tilde'quote\"", "100%"]


def test_unicode_and_odd_keys(store: Store) -> None:
    for i, key in enumerate(ODD_KEYS):
        _write(store, key, f"{i}".encode() * 10)
    assert _keys(store) == sorted(ODD_KEYS)
    for i, key in enumerate(ODD_KEYS):
        assert _read(store, key) == f"{i}".encode() * 10
        stat = store.stat(key)
        assert stat is not None and stat.key == key


# -- delete, missing, overwrite ---------------------------------------------------------------


def test_delete(store: Store) -> None:
    _write(store, "d/one", b"1")
    _write(store, "d/two", b"2")
    store.delete("d/one")
    assert store.stat("d/one") is None
    assert _keys(store) == ["d/two"]
    store.delete("d/one")  # already gone: not an error
    store.delete("d/two")
    assert _keys(store) == []


def test_missing_key(store: Store) -> None:
    assert store.stat("nope") is None
    with pytest.raises(FileNotFoundError):
        _read(store, "nope")
    with pytest.raises(FileNotFoundError):
        store.open("nope")
    store.delete("nope")
    assert _keys(store) == []


def test_overwrite(store: Store) -> None:
    _write(store, "k", b"the first version, longer", meta=META)
    newer = ObjectMeta(content_type="application/json", user={"owner": "bo"},
                       mtime=datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC))
    _write(store, "k", b"second", meta=newer)
    assert _read(store, "k") == b"second"
    stat = store.stat("k")
    assert stat is not None and stat.size == len(b"second") and stat.meta is not None
    assert _same_time(stat.meta.mtime, datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC))
    if store.features.metadata:
        assert stat.meta.content_type == "application/json"
        assert dict(stat.meta.user) == {"owner": "bo"}
    assert _keys(store) == ["k"]


# -- failed writes leave nothing behind -------------------------------------------------------


def _nothing_left(store: Store, key: str, old: bytes | None) -> None:
    """``key`` still holds ``old``; or, where it held nothing, there is no object and no
    unfinished upload of it. (A failed overwrite on Azure leaves its uncommitted blocks to
    the next commit or to Azure's clean-up, as recommitting would change the blob: see
    docs/backends/azure.md.)"""
    if old is not None:
        assert _read(store, key) == old
        return
    assert store.stat(key) is None and key not in _keys(store)
    assert store.cleanup_incomplete([key]) == 0


@pytest.mark.parametrize("large", [False, True], ids=["single", "parts"])
@pytest.mark.parametrize("alg", ["md5", "crc32c"])
def test_corrupt_write_is_rejected(backend: Backend, store: Store, large: bool,
                                   alg: str) -> None:
    # The source's checksum says other bytes than those that arrive: the write must refuse.
    size = backend.part_size + 1000 if large else 1000
    data = _data(size, seed=5)
    wrong = {alg: hash_bytes(b"other bytes")[alg]}
    _refused_over_old_and_new(backend, store, IntegrityError, data, checksums=wrong)


def _refused_over_old_and_new(backend: Backend, store: Store, error: type[Exception],
                              data: bytes, **write: Any) -> None:
    """A refused write leaves an existing object's old version, and no new object."""
    _write(store, "kept", b"previous version")
    for key, old in (("kept", b"previous version"), ("new", None)):
        with pytest.raises(error):
            _write(store, key, data, part_size=backend.part_size, **write)
        _nothing_left(store, key, old)


@pytest.mark.parametrize("large", [False, True], ids=["single", "parts"])
@pytest.mark.parametrize("delta", [-1, 1], ids=["shorter", "longer"])
def test_source_of_another_size_than_listed_is_refused(backend: Backend, store: Store,
                                                       large: bool, delta: int) -> None:
    listed = backend.part_size + 1000 if large else 1000
    data = _data(listed + delta, seed=6)
    _refused_over_old_and_new(backend, store, SourceChangedError, data, size=listed)


@pytest.mark.parametrize("large", [False, True], ids=["single", "parts"])
def test_source_failing_mid_stream_leaves_nothing(backend: Backend, store: Store,
                                                  large: bool) -> None:
    size = backend.part_size + backend.part_size // 2 if large else 1000
    data = _data(size, seed=7)

    def broken() -> Iterator[bytes]:
        yield data[:backend.part_size + 1 if large else size // 2]  # parts may be up
        raise ConnectionResetError("the source went away")

    _write(store, "kept", b"previous version")
    for key, old in (("kept", b"previous version"), ("new", None)):
        with pytest.raises(ConnectionResetError):
            store.write(key, ByteStream(broken()), size=size, meta=ObjectMeta(), checksums={},
                        part_size=backend.part_size)
        _nothing_left(store, key, old)


def test_concurrent_writes_on_one_store(store: Store) -> None:
    blobs = {f"t{n}/{i}": _data(1000 + 10 * n + i, seed=n) for n in range(6) for i in range(3)}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(3):
                _write(store, f"t{n}/{i}", blobs[f"t{n}/{i}"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _keys(store) == sorted(blobs)
    assert all(_read(store, key) == data for key, data in blobs.items())


# -- declared features agree with behaviour ---------------------------------------------------


def test_declared_verbs_are_the_ones_the_backend_has(store: Store) -> None:
    # A backend declares an optional verb exactly when it brings its own; the others keep
    # Store's default, which is always safe to call.
    assert isinstance(store, Store) and isinstance(store.features, Features)
    assert not hasattr(store, "capabilities")  # one name for them: features
    for feature, verb in FEATURE_VERBS.items():
        own = getattr(type(store), verb) is not getattr(Store, verb)
        assert getattr(store.features, feature) == own, (
            f"{type(store).__name__}: features.{feature} is {not own} but {verb} is "
            f"{'its own' if own else 'the default'}")


def test_check_and_check_source(backend: Backend, store: Store) -> None:
    store.check()  # a destination root may not exist yet
    _write(store, "k", b"x")
    store.check()
    store.check_source()
    if backend.missing is None:  # a memory store has no root that could be missing
        return
    missing = backend.missing()
    with pytest.raises(ConfigError):
        missing.check_source()
    if not missing.features.check_source:  # the default is check() itself
        with pytest.raises(ConfigError):
            missing.check()


def test_cleanup_of_incomplete_uploads(backend: Backend, store: Store) -> None:
    _write(store, "done", b"finished")
    assert store.cleanup_incomplete(["done", "never-started"]) == 0
    if backend.leave_incomplete is None:
        assert not store.features.cleanup_incomplete
        return
    assert store.features.cleanup_incomplete
    backend.leave_incomplete("killed")
    assert store.cleanup_incomplete(["killed", "done"]) == 1
    assert store.cleanup_incomplete(["killed"]) == 0  # nothing left the second time
    assert store.stat("killed") is None and _keys(store) == ["done"]
    assert _read(store, "done") == b"finished"


def test_flush_keeps_what_was_written(store: Store) -> None:
    _write(store, "f/1", b"one")
    store.flush()
    _write(store, "f/2", b"two")  # the store goes on working after a flush
    store.flush()
    assert _keys(store) == ["f/1", "f/2"]
    assert _read(store, "f/1") == b"one" and _read(store, "f/2") == b"two"


# -- the features table in docs/backends/README.md -------------------------------------------


def _features_table() -> dict[str, dict[str, bool]]:
    """``{feature: {backend: declared}}`` from the README's table."""
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    header = next(line for line in README.read_text().splitlines()
                  if line.startswith("| feature |"))
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]
    table: dict[str, dict[str, bool]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        feature = re.sub(r"[`*]", "", cells[0])
        table[feature] = {name: cell == "yes" for name, cell in
                          zip(names, cells[1:], strict=True)}
    return table


def test_features_table_matches_the_code() -> None:
    assert set(CLASSES) == set(_BACKENDS)  # every backend of the suite is in the table
    table = _features_table()
    assert set(table) == {f.name for f in dataclasses.fields(Features)}
    for feature, by_backend in table.items():
        assert set(by_backend) == set(CLASSES)
        for name, cls in CLASSES.items():
            assert getattr(cls.features, feature) == by_backend[name], (
                f"docs/backends/README.md says {name} {feature}={by_backend[name]}")
