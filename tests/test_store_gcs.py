"""GCSStore against gcp-storage-emulator over real HTTP (fixtures in tests/servers/gcs.py)."""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cloudshift.core.checksums import hash_bytes, hex_to_b64
from cloudshift.core.errors import ConfigError, SourceChangedError
from cloudshift.core.uri import Location
from cloudshift.storage import gcs as gcs_module
from cloudshift.storage.base import ByteStream, ObjectMeta
from cloudshift.storage.gcs import GCSStore
from servers.gcs import GCSServer

KIB = 1024
PART = 256 * KIB
LARGE = 1_363_148  # ~1.3 MiB: five full 256 KiB chunks and a short last one


def _data(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


def _chunks(data: bytes, step: int = 100_000) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


def _stream(data: bytes, step: int = 100_000) -> ByteStream:
    return ByteStream(_chunks(data, step))


def _store(bucket: str, prefix: str = "", endpoint: str | None = None) -> GCSStore:
    return GCSStore(Location("gs", bucket, prefix), endpoint=endpoint)


def _put(store: GCSStore, key: str, data: bytes, *, part_size: int = 16 * 1024 * KIB,
         meta: ObjectMeta | None = None, checksums: dict[str, str] | None = None) -> Any:
    return store.write(key, _stream(data), size=len(data), meta=meta or ObjectMeta(),
                       checksums=checksums or {}, part_size=part_size)


def _record_requests(store: GCSStore, headers: list[Any] | None = None
                     ) -> list[tuple[str, str, Any]]:
    """Every HTTP request the store's client sends: (method, url, body); their headers are
    appended to ``headers`` when given."""
    log: list[tuple[str, str, Any]] = []

    def hook(resp: Any, *args: Any, **kwargs: Any) -> None:
        log.append((resp.request.method, resp.request.url, resp.request.body))
        if headers is not None:
            headers.append(resp.request.headers)

    store._client()._http.hooks["response"].append(hook)
    return log


def _names(server: GCSServer, bucket: str) -> list[str]:
    return [b.name for b in server.client().list_blobs(bucket)]


def test_small_write_is_one_multipart_upload(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # (Round trips in general: test_store_conformance.py.)
    store = _store(gcs_bucket, "root/")
    data = b"hello, cloud storage\n" * 10
    log = _record_requests(store)
    info = _put(store, "a/b.txt", data)
    uploads = [(m, u) for m, u, _ in log if "/upload/" in u]
    assert uploads and all("uploadType=multipart" in u for _, u in uploads) and len(uploads) == 1
    assert dict(info.checksums) == hash_bytes(data)
    blob = gcs_server.client().bucket(gcs_bucket).get_blob("root/a/b.txt")
    assert blob.download_as_bytes() == data


def test_large_resumable_round_trip(gcs_server: GCSServer, gcs_bucket: str) -> None:
    store = _store(gcs_bucket)
    data = _data(LARGE)
    headers: list[Any] = []
    log = _record_requests(store, headers)
    info = _put(store, "big.bin", data, part_size=PART, checksums=hash_bytes(data))
    assert info.size == LARGE and dict(info.checksums) == hash_bytes(data)
    # Streamed as a resumable upload in 256 KiB chunks, not one request.
    initiate = [(u, body) for m, u, body in log if m == "POST" and "uploadType=resumable" in u]
    chunks = [body for m, u, body in log if m == "PUT" and "upload_id=" in u]
    assert len(initiate) == 1
    assert [len(c) for c in chunks] == [PART] * 5 + [LARGE - 5 * PART]
    # The source's checksums went along in the initiating request, for GCS to verify.
    sent_meta = json.loads(initiate[0][1])
    assert sent_meta["md5Hash"] == hex_to_b64(hash_bytes(data)["md5"])
    assert sent_meta["crc32c"] == hex_to_b64(hash_bytes(data)["crc32c"])
    # ...and the final chunk carries the CRC32C of all bytes sent.
    assert headers[-1].get("x-goog-hash") == "crc32c=" + hex_to_b64(hash_bytes(data)["crc32c"])
    assert gcs_server.client().bucket(gcs_bucket).blob("big.bin").download_as_bytes() == data
    pieces = list(store.read("big.bin", chunk_size=100_000))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 100_000


def test_large_exact_multiple_of_chunk_and_no_source_checksums(gcs_bucket: str) -> None:
    store = _store(gcs_bucket)
    data = _data(2 * PART, seed=3)
    info = _put(store, "even.bin", data, part_size=PART + 1000)  # rounds down to 256 KiB
    assert info.size == len(data) and dict(info.checksums) == hash_bytes(data)
    assert b"".join(store.read("even.bin")) == data


def test_read_in_several_ranges(gcs_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(gcs_bucket)
    odd, even = _data(LARGE, seed=1), _data(4 * PART, seed=2)
    _put(store, "odd", odd)
    _put(store, "even", even)
    monkeypatch.setattr(gcs_module, "_READ_WINDOW", PART)
    log = _record_requests(store)
    assert b"".join(store.read("odd", chunk_size=64 * KIB)) == odd
    ranged = [u for m, u, _ in log if m == "GET" and "alt=media" in u]
    assert len(ranged) == 6
    assert b"".join(store.read("even", chunk_size=PART)) == even


def test_keys_reach_gcs_as_given(gcs_server: GCSServer, gcs_bucket: str) -> None:
    # (Odd keys in general: test_store_conformance.py.) A key may end in "/", and the names
    # GCS stores are exactly ours, as another client sees them.
    store = _store(gcs_bucket, "p/")
    for key in ["folder/", "a+b=c&d?e#f%20"]:
        _put(store, key, key.encode() * 3)
    assert _names(gcs_server, gcs_bucket) == ["p/a+b=c&d?e#f%20", "p/folder/"]
    assert [i.key for i in store.list()] == ["a+b=c&d?e#f%20", "folder/"]
    assert b"".join(store.read("folder/")) == b"folder/" * 3


def test_listing_skips_the_placeholder_and_carries_metadata(gcs_server: GCSServer,
                                                            gcs_bucket: str) -> None:
    # (Order and prefixes in general: test_store_conformance.py.)
    bucket = gcs_server.client().bucket(gcs_bucket)
    for name in ["data/", "data/a/b", "data/c"]:
        bucket.blob(name).upload_from_string(name.encode(), content_type="text/plain")
    store = _store(gcs_bucket, "data/")
    listed = list(store.list())
    # The "data/" placeholder itself is not an object under the root.
    assert [i.key for i in listed] == ["a/b", "c"]
    info = listed[0]
    assert info.size == len(b"data/a/b") and dict(info.checksums) == hash_bytes(b"data/a/b")
    assert info.meta is not None and info.meta.content_type == "text/plain"
    assert info.storage_class == "STANDARD"


def test_listing_from_a_key_sends_start_offset(gcs_bucket: str) -> None:
    # features.ranged_list: the offset goes to GCS (inclusive there; the emulator ignores
    # it), and the store leaves out the key itself and anything before it.
    store = _store(gcs_bucket, "p/")
    for key in ["a", "b", "c"]:
        _put(store, key, b"x")
    log = _record_requests(store)
    assert [i.key for i in store.list(start_after="b")] == ["c"]
    [(method, url, _)] = log
    assert method == "GET" and parse_qs(urlsplit(url).query)["startOffset"] == ["p/b"]


def test_metadata_round_trip(gcs_server: GCSServer, gcs_bucket: str) -> None:
    store = _store(gcs_bucket)
    mtime = datetime(2021, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)
    meta = ObjectMeta(content_type="text/csv; charset=utf-8", content_encoding="gzip",
                      content_disposition='attachment; filename="r.csv"',
                      cache_control="public, max-age=60", content_language="fr",
                      user={"Owner": "ana", "note": "naïve café ✓ 日本"}, mtime=mtime)
    for key, size, part in (("small", 1000, 16 * 1024 * KIB), ("large", LARGE, PART)):
        data = _data(size)
        _put(store, key, data, meta=meta, part_size=part)
        blob = gcs_server.client().bucket(gcs_bucket).get_blob(key)
        assert blob.content_type == meta.content_type
        assert blob.content_encoding == "gzip"
        assert blob.content_disposition == meta.content_disposition
        assert blob.cache_control == meta.cache_control
        assert blob.content_language == "fr"
        assert blob.metadata["owner"] == "ana" and blob.metadata["note"] == "naïve café ✓ 日本"
        assert float(blob.metadata["mtime"]) == mtime.timestamp()
        # (Not read back here: the emulator cannot download an object whose user metadata
        # is not Latin-1, see docs/backends/gcs.md.)
        for info in (store.stat(key), next(i for i in store.list() if i.key == key)):
            assert info is not None and info.meta is not None
            got = info.meta
            assert got.content_type == meta.content_type
            assert got.content_encoding == "gzip"
            assert got.content_disposition == meta.content_disposition
            assert got.cache_control == meta.cache_control
            assert got.content_language == "fr"
            assert dict(got.user) == {"owner": "ana", "note": "naïve café ✓ 日本"}
            assert got.mtime == mtime


def test_gzip_encoded_object_reads_as_stored(gcs_bucket: str) -> None:
    store = _store(gcs_bucket)
    data = gzip.compress(b"text that compresses well " * 1000)
    _put(store, "log.gz", data, meta=ObjectMeta(content_type="text/plain",
                                                 content_encoding="gzip",
                                                 user={"note": "café"}))
    assert b"".join(store.read("log.gz")) == data


# One byte more or less: test_store_conformance.py. Here the cases at the edges of the
# resumable upload's 256 KiB chunks.
@pytest.mark.parametrize("size,part,delivered", [
    (5000, 16 * 1024 * KIB, 300_000),
    (LARGE, PART, 3 * PART), (LARGE, PART, 6 * PART), (LARGE, PART, 0),
    (4 * PART, PART, 4 * PART + 1),
], ids=["single-much-longer", "resumable-short-at-chunk", "resumable-long-at-chunk",
        "resumable-empty", "resumable-one-more-after-last-chunk"])
def test_size_mismatch_leaves_no_object(gcs_server: GCSServer, gcs_bucket: str, size: int,
                                        part: int, delivered: int) -> None:
    store = _store(gcs_bucket)
    data = _data(delivered)
    with pytest.raises(SourceChangedError):
        store.write("k", _stream(data), size=size, meta=ObjectMeta(),
                    checksums={}, part_size=part)
    assert _names(gcs_server, gcs_bucket) == []
    # Over an existing object: it stays as it was.
    bucket = gcs_server.client().bucket(gcs_bucket)
    bucket.blob("k").upload_from_string(b"keep me")
    with pytest.raises(SourceChangedError):
        store.write("k", _stream(data), size=size, meta=ObjectMeta(),
                    checksums={}, part_size=part)
    assert bucket.blob("k").download_as_bytes() == b"keep me"


def test_source_failing_mid_upload_leaves_no_object(gcs_server: GCSServer,
                                                    gcs_bucket: str) -> None:
    store = _store(gcs_bucket)
    data = _data(LARGE)

    def broken() -> Iterator[bytes]:
        yield data[:3 * PART + 5]
        raise ConnectionResetError("source connection lost")

    log = _record_requests(store)
    with pytest.raises(ConnectionResetError):
        store.write("k", ByteStream(broken()), size=LARGE,
                    meta=ObjectMeta(), checksums={}, part_size=PART)
    # Three chunks had gone up, yet no object exists: the session was never finalized.
    assert len([u for m, u, _ in log if m == "PUT" and "upload_id=" in u]) == 3
    assert _names(gcs_server, gcs_bucket) == []


def test_check(gcs_bucket: str) -> None:
    _store(gcs_bucket).check()
    _store(gcs_bucket, "no/such/prefix/").check()


def test_check_missing_bucket(gcs_server: GCSServer) -> None:
    with pytest.raises(ConfigError) as err:
        _store("no-such-bucket-here").check()
    msg = str(err.value)
    assert "gs://no-such-bucket-here" in msg and "does not exist" in msg
    assert "\n" not in msg and err.value.hint


def test_check_unreachable_endpoint(gcs_server: GCSServer) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        _store("bucket", endpoint="http://127.0.0.1:1").check()
    assert time.monotonic() - t0 < 5
    assert "http://127.0.0.1:1" in str(err.value) and "\n" not in str(err.value)


def test_explicit_endpoint_without_emulator_env(gcs_server: GCSServer, gcs_bucket: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    store = _store(gcs_bucket, endpoint=gcs_server.endpoint)
    store.check()
    _put(store, "x", b"via endpoint")
    assert b"".join(store.read("x")) == b"via endpoint"
    # host:port without a scheme, as STORAGE_EMULATOR_HOST is often written
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint.removeprefix("http://"))
    assert [i.key for i in _store(gcs_bucket).list()] == ["x"]


def test_missing_credentials_is_config_error(gcs_server: GCSServer, tmp_path: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    secret_path = str(tmp_path / "missing-key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", secret_path)
    with pytest.raises(ConfigError) as err:
        _store("some-bucket").check()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(err.value)
    assert "gcloud auth application-default login" in str(err.value)
    assert "\n" not in str(err.value)


def test_emulator_endpoint_is_anonymous(gcs_bucket: str) -> None:
    from google.auth.credentials import AnonymousCredentials

    client = _store(gcs_bucket)._client()
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client.project == os.environ["GOOGLE_CLOUD_PROJECT"]
