"""S3Store against a real moto server over HTTP (fixtures in tests/servers/s3.py)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import google_crc32c
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, FlexibleChecksumError, ResponseStreamingError
from botocore.response import StreamingBody

from cloudshift.core.errors import ConfigError, IntegrityError, ObjectError, SourceChangedError
from cloudshift.core.uri import parse
from cloudshift.storage import s3 as s3_module
from cloudshift.storage.base import ByteStream, ObjectMeta, mtime_to_str
from cloudshift.storage.s3 import S3Store, _info_from_headers, _part_size
from cloudshift.storage.s3_get import LeanGet, _CheckedBody
from servers import free_port, stop, unavailable, wait_for_port
from servers.s3 import S3Server

MiB = 1024 * 1024
PART = 5 * MiB


def _stream(data: bytes, chunk: int = MiB) -> ByteStream:
    chunks = (data[i:i + chunk] for i in range(0, len(data), chunk))
    return ByteStream(iter(chunks))


def _header(request: Any, name: str) -> str:
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def _body(body: Any) -> bytes:
    """A request body as bytes (botocore wraps streaming payloads in a BytesIO)."""
    return bytes(body.getvalue()) if hasattr(body, "getvalue") else bytes(body)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _store(bucket: str, prefix: str = "", endpoint: str | None = None) -> S3Store:
    return S3Store(parse(f"s3://{bucket}/{prefix}"), endpoint=endpoint)


def _write(store: S3Store, key: str, data: bytes, meta: ObjectMeta | None = None,
           checksums: dict[str, str] | None = None, part_size: int = PART) -> Any:
    return store.write(key, _stream(data), size=len(data), meta=meta or ObjectMeta(),
                       checksums=checksums or {}, part_size=part_size)


def _data(size: int) -> bytes:
    return os.urandom(size)


def _no_object(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def _no_uploads(client: Any, bucket: str) -> bool:
    return not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def _sent(store: S3Store, operation: str) -> list[Any]:
    """Every prepared request ``store`` sends for ``operation`` (appended as they go), with
    its body as it was sent (part buffers are reused once a part is up)."""
    seen: list[Any] = []

    def hook(request: Any, **_: Any) -> None:
        body = None if request.body is None else _body(request.body)
        seen.append(SimpleNamespace(url=request.url, method=request.method,
                                    headers=request.headers, body=body))

    store._client.meta.events.register(f"before-send.s3.{operation}", hook)
    return seen


# -- round trips ----------------------------------------------------------------------------


def test_small_roundtrip_sends_content_md5(s3_server: S3Server, s3_bucket: str) -> None:
    store = _store(s3_bucket, "pre")
    data = _data(300_000)
    puts = _sent(store, "PutObject")
    info = _write(store, "a.bin", data, checksums={"md5": _md5(data)})
    assert info.size == len(data)
    assert info.checksums == {"md5": _md5(data)}
    assert info.etag == _md5(data)
    [put] = puts
    assert _header(put, "Content-MD5") == base64.b64encode(hashlib.md5(data).digest()).decode()
    raw = s3_server.client().get_object(Bucket=s3_bucket, Key="pre/a.bin")["Body"].read()
    assert raw == data
    assert b"".join(store.read("a.bin", chunk_size=64 * 1024)) == data
    [listed] = list(store.list())
    assert listed.key == "a.bin" and listed.size == len(data)
    assert listed.checksums == {"md5": _md5(data)}
    assert listed.mtime is not None and listed.mtime.tzinfo is not None
    assert listed.storage_class == "STANDARD"


def test_multipart_roundtrip(s3_server: S3Server, s3_bucket: str) -> None:
    store = _store(s3_bucket, "big")
    data = _data(11 * MiB)
    parts = _sent(store, "UploadPart")
    info = _write(store, "obj", data, checksums={"md5": _md5(data)})
    # Three parts of at most 5 MiB, each with a correct Content-MD5. Parts go up several at a
    # time, so they may arrive in any order; the ETag below checks they were numbered right.
    bodies = [_body(p.body) for p in parts]
    assert sorted(len(b) for b in bodies) == [MiB, PART, PART]
    for p, b in zip(parts, bodies, strict=True):
        assert _header(p, "Content-MD5") == base64.b64encode(hashlib.md5(b).digest()).decode()
        # As botocore does for file-like bodies: the server may refuse before the body goes.
        assert _header(p, "Expect") == "100-continue"
    digests = b"".join(hashlib.md5(data[i:i + PART]).digest() for i in range(0, len(data), PART))
    expected_etag = f"{hashlib.md5(digests).hexdigest()}-3"
    assert info.etag == expected_etag
    assert info.checksums == {"md5": _md5(data)}
    client = s3_server.client()
    assert client.head_object(Bucket=s3_bucket, Key="big/obj")["ETag"].strip('"') == expected_etag
    assert client.get_object(Bucket=s3_bucket, Key="big/obj")["Body"].read() == data
    assert b"".join(store.read("obj")) == data
    stat = store.stat("obj")
    assert stat is not None and stat.size == len(data)
    assert "md5" not in stat.checksums  # a multipart ETag is not an MD5
    assert _no_uploads(client, s3_bucket)


def test_small_part_size_is_raised_to_the_s3_minimum(s3_server: S3Server, s3_bucket: str) -> None:
    store = _store(s3_bucket)
    data = _data(3 * MiB)
    puts = _sent(store, "PutObject")
    info = _write(store, "k", data, part_size=MiB)  # 1 MiB parts would fail EntityTooSmall
    assert len(puts) == 1 and info.checksums == {"md5": _md5(data)}
    assert b"".join(store.read("k")) == data


def test_part_size_limits() -> None:
    assert _part_size(100, MiB) == PART
    assert _part_size(100, 16 * MiB) == 16 * MiB
    assert _part_size(10 ** 13, 16 * MiB) * 10_000 >= 10 ** 13
    assert _part_size(10 ** 13, 16 * MiB) % MiB == 0
    assert _part_size(1, 10 * 1024 ** 3) == 5 * 1024 ** 3


def test_keys_reach_s3_as_given(s3_server: S3Server, s3_bucket: str) -> None:
    # (Odd keys in general: test_store_conformance.py.) On S3 a key may end in "/", and the
    # names S3 stores are exactly ours, as another client sees them.
    store = _store(s3_bucket, "p q")
    keys = ["dir/", "x+y=z&?%20#.txt", "deep/er/ key "]
    for i, key in enumerate(keys):
        _write(store, key, f"{i}".encode() * 10)
    assert [o.key for o in store.list()] == sorted(keys)
    for i, key in enumerate(keys):
        raw = s3_server.client().get_object(Bucket=s3_bucket, Key=f"p q/{key}")
        assert raw["Body"].read() == f"{i}".encode() * 10


def test_listing_skips_the_prefix_marker_and_starts_on_the_server(s3_server: S3Server,
                                                                   s3_bucket: str) -> None:
    # (Order and prefixes in general: test_store_conformance.py.)
    client = s3_server.client()
    for key in ["pre/", "pre/a", "pre/b", "pre/c"]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    store = _store(s3_bucket, "pre")
    listed = list(store.list())
    # The "pre/" marker object itself has no relative key and is left out.
    assert [o.key for o in listed] == ["a", "b", "c"]
    assert {o.key: o.size for o in listed} == {"a": 5, "b": 5, "c": 5}
    # features.ranged_list: the listing from a key starts there on the server.
    lists = _sent(store, "ListObjectsV2")
    assert [o.key for o in store.list(start_after="a")] == ["b", "c"]
    [request] = lists
    assert parse_qs(urlsplit(request.url).query)["start-after"] == ["pre/a"]


class _PeakBodies(s3_module._BodyBuffers):
    """The process's body buffers, remembering the most bytes in use at once."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.peak = 0

    def acquire(self, size: int) -> bytearray:
        buf = super().acquire(size)
        with self._cond:
            self.peak = max(self.peak, self.in_use)
        return buf


def test_parts_in_memory_stay_within_the_process_limit(
        s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = _PeakBodies(5 * PART)
    monkeypatch.setattr(s3_module, "_BODIES", bodies)
    # Two stores (as a copy and a verify might have), four objects of four parts: without the
    # limit up to 4 x (PARTS_PER_OBJECT + 1) parts could be in memory at once.
    stores = [_store(s3_bucket, "a"), _store(s3_bucket, "b")]
    blobs = {f"k{i}": _data(4 * PART - i) for i in range(4)}
    with ThreadPoolExecutor(4) as pool:
        infos = list(pool.map(lambda i: _write(stores[i % 2], f"k{i}", blobs[f"k{i}"]),
                              range(4)))
    assert all(info.checksums == {"md5": _md5(blobs[info.key])} for info in infos)
    assert PART < bodies.peak <= 5 * PART
    assert bodies.in_use == 0
    client = s3_server.client()
    for i in range(4):
        got = client.get_object(Bucket=s3_bucket, Key=f"{'ab'[i % 2]}/k{i}")["Body"].read()
        assert got == blobs[f"k{i}"]
    assert _no_uploads(client, s3_bucket)


def test_part_buffers_are_reused_and_bounded() -> None:
    bodies = s3_module._BodyBuffers(3 * PART)
    first = bodies.acquire(PART)
    bodies.release(first)
    assert bodies.acquire(PART) is first  # kept for the next part of the same size
    second = bodies.acquire(PART)
    small = bodies.acquire(1000)
    assert bodies.in_use == 2 * PART + 1000
    bodies.release(small)
    bodies.release(first)
    bodies.release(second)
    assert bodies.in_use == 0
    # A part larger than the limit still goes, and cached buffers make room for it.
    big = bodies.acquire(4 * PART)
    assert len(big) == 4 * PART and bodies.in_use == 4 * PART
    bodies.release(big)
    assert bodies.in_use == 0


def test_byte_stream_read_and_readinto_hash_every_byte_once() -> None:
    data = _data(5 * MiB + 12345)
    sizes = [MiB, 1, 0, 700_000, MiB, 3 * MiB]  # uneven chunks, one empty
    chunks, pos = [], 0
    for n in sizes:
        chunks.append(data[pos:pos + n])
        pos += n
    assert pos >= len(data) and b"".join(chunks) == data
    counted: list[int] = []
    stream = ByteStream(iter(chunks), on_bytes=counted.append)
    first = stream.read(MiB)
    assert first is chunks[0]  # exactly one whole chunk: handed on without a copy
    buf = bytearray(MiB)
    assert stream.readinto(buf) == MiB  # across three chunks, ending inside one
    assert stream.read(10) == data[2 * MiB:2 * MiB + 10]
    rest = bytearray(len(data))
    got = stream.readinto(memoryview(rest)[:2 * MiB])
    assert got == 2 * MiB
    tail = stream.read()
    assert stream.read(5) == b"" and stream.readinto(bytearray(5)) == 0
    assert first + bytes(buf) + data[2 * MiB:2 * MiB + 10] + bytes(rest[:got]) + tail == data
    assert stream.bytes_read == len(data) == sum(counted)
    crc = google_crc32c.Checksum()
    crc.update(data)
    assert stream.checksums() == {"md5": _md5(data), "crc32c": crc.digest().hex()}


# -- metadata -------------------------------------------------------------------------------

MTIME = datetime(2021, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
META = ObjectMeta(
    content_type="text/plain; charset=utf-8",
    content_encoding="gzip",
    content_disposition='attachment; filename="report.txt"',
    cache_control="max-age=60, public",
    content_language="de-CH",
    user={"Owner": "Zoë ☃", "plain": "x", "padded": "  spaced  ",
          "looks-encoded": "=?UTF-8?B?Zm9v?=", "long": "äöü€" * 40, "line": "one\ntwo"},
    mtime=MTIME,
)
USER_BACK = {"owner": "Zoë ☃", "plain": "x", "padded": "  spaced  ",
             "looks-encoded": "=?UTF-8?B?Zm9v?=", "long": "äöü€" * 40, "line": "one\ntwo"}


def _rfc2047(value: str) -> str:
    """Decode with the standard library, independently of the store's own decoder."""
    return str(make_header(decode_header(value)))


@pytest.mark.parametrize("size", [1000, 11 * MiB], ids=["single", "multipart"])
def test_metadata_roundtrip(s3_server: S3Server, s3_bucket: str, size: int) -> None:
    store = _store(s3_bucket)
    _write(store, "m", _data(size), meta=META)
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="m")
    assert head["ContentType"] == META.content_type
    assert head["ContentEncoding"] == META.content_encoding
    assert head["ContentDisposition"] == META.content_disposition
    assert head["CacheControl"] == META.cache_control
    assert head["ContentLanguage"] == META.content_language
    raw = head["Metadata"]
    assert raw["plain"] == "x"
    assert raw["mtime"] == mtime_to_str(MTIME)
    assert raw["owner"].startswith("=?UTF-8?B?") and raw["owner"].isascii()
    assert _rfc2047(raw["owner"]) == "Zoë ☃"
    assert _rfc2047(raw["long"]) == "äöü€" * 40
    assert all(len(word) <= 75 for word in raw["long"].split())
    assert set(raw) == {*USER_BACK, "mtime"}

    stat = store.stat("m")
    assert stat is not None and stat.meta is not None
    meta = stat.meta
    assert (meta.content_type, meta.content_encoding, meta.content_disposition,
            meta.cache_control, meta.content_language) == (
        META.content_type, META.content_encoding, META.content_disposition,
        META.cache_control, META.content_language)
    assert dict(meta.user) == USER_BACK
    assert meta.mtime is not None and abs((meta.mtime - MTIME).total_seconds()) < 1e-5
    assert stat.size == size


def test_stat_reads_metadata_written_by_others(s3_server: S3Server, s3_bucket: str) -> None:
    data = b"hello"
    crc = google_crc32c.Checksum()
    crc.update(data)
    s3_server.client().put_object(
        Bucket=s3_bucket, Key="k", Body=data, ChecksumAlgorithm="CRC32C",
        ChecksumCRC32C=base64.b64encode(crc.digest()).decode(),
        Metadata={"mtime": "1600000000.5", "Who": "=?utf-8?q?Ren=C3=A9_M?="})
    stat = _store(s3_bucket).stat("k")
    assert stat is not None and stat.meta is not None
    assert stat.checksums == {"md5": _md5(data), "crc32c": crc.digest().hex()}
    assert stat.meta.user == {"who": "René M"}
    assert stat.meta.mtime == datetime.fromtimestamp(1600000000.5, tz=UTC)
    assert stat.etag == _md5(data)


def test_unsendable_metadata_is_refused_before_reading(s3_bucket: str) -> None:
    store = _store(s3_bucket)
    stream = _stream(b"abc")
    with pytest.raises(ObjectError, match="metadata name"):
        store.write("k", stream, size=3, meta=ObjectMeta(user={"naïve": "x"}), checksums={})
    with pytest.raises(ObjectError, match="ContentDisposition"):
        store.write("k", stream, size=3, checksums={},
                    meta=ObjectMeta(content_disposition='attachment; filename="☃"'))
    assert stream.bytes_read == 0
    assert store.stat("k") is None


# -- failures leave nothing behind ----------------------------------------------------------


def _failing_chunks(data: bytes, exc: BaseException) -> Iterator[bytes]:
    yield data
    raise exc


@pytest.mark.parametrize("exc", [RuntimeError("disk gone"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_failed_multipart_aborts(s3_server: S3Server, s3_bucket: str, exc: BaseException,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(s3_bucket)
    parts = _sent(store, "UploadPart")
    stream = ByteStream(_failing_chunks(_data(7 * MiB), exc))
    bodies = _PeakBodies(s3_module.DEFAULT_BODY_MEMORY)
    monkeypatch.setattr(s3_module, "_BODIES", bodies)
    with pytest.raises(type(exc)):
        store.write("k", stream, size=11 * MiB, meta=ObjectMeta(), checksums={},
                    part_size=PART)
    assert len(parts) == 1  # the failure came mid-upload, after a part was stored
    assert bodies.in_use == 0  # every part's buffer went back
    client = s3_server.client()
    assert _no_uploads(client, s3_bucket)
    assert _no_object(client, s3_bucket, "k")


@pytest.mark.parametrize("size", [1000, 11 * MiB], ids=["single", "multipart"])
def test_wrong_source_checksum_sends_nothing(s3_server: S3Server, s3_bucket: str,
                                             size: int) -> None:
    # (That the write is refused: test_store_conformance.py.) The bytes are checked before
    # a PutObject or a multipart upload goes out.
    store = _store(s3_bucket)
    puts = _sent(store, "PutObject")
    completes = _sent(store, "CompleteMultipartUpload")
    with pytest.raises(IntegrityError, match="md5"):
        _write(store, "k", _data(size), checksums={"md5": "0" * 32})
    assert puts == [] and completes == []
    assert _no_uploads(s3_server.client(), s3_bucket)


def _corrupt_body(params: dict[str, Any], **_: Any) -> None:
    body = _body(params["body"])
    params["body"] = bytes([body[0] ^ 1]) + body[1:]


def test_etag_mismatch_is_an_integrity_error(s3_bucket: str) -> None:
    # moto does not check Content-MD5 (AWS does and would answer BadDigest), so bytes
    # corrupted after we hashed them are caught by the ETag comparison instead.
    store = _store(s3_bucket)
    store._client.meta.events.register("before-call.s3.PutObject", _corrupt_body)
    with pytest.raises(IntegrityError, match="ETag"):
        _write(store, "k", _data(1000))


def test_multipart_etag_mismatch_is_an_integrity_error(s3_server: S3Server,
                                                       s3_bucket: str) -> None:
    store = _store(s3_bucket)
    store._client.meta.events.register("before-call.s3.UploadPart", _corrupt_body)
    with pytest.raises(IntegrityError, match="ETag"):
        _write(store, "k", _data(11 * MiB))
    assert _no_uploads(s3_server.client(), s3_bucket)


# -- read / stat / delete -------------------------------------------------------------------


class _BreakingBody:
    """A GetObject body that fails after its first chunk, like a dropped connection."""

    def __init__(self, body: Any, before_break: Any = None) -> None:
        self._body = body
        self._before_break = before_break

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        yield next(self._body.iter_chunks(chunk_size))
        if self._before_break is not None:
            self._before_break()
        raise ResponseStreamingError(error="connection reset")

    def close(self) -> None:
        self._body.close()


def _break_first_get(store: S3Store, before_break: Any = None) -> list[Any]:
    calls: list[Any] = []

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        if not calls and "Body" in parsed:
            parsed["Body"] = _BreakingBody(parsed["Body"], before_break)
        calls.append(parsed)

    store._client.meta.events.register("after-call.s3.GetObject", hook)
    lean_get = store._lean_get

    def lean(key: str) -> dict[str, Any] | None:
        parsed = lean_get(key)
        if parsed is not None:
            hook(parsed)
        return parsed

    store._lean_get = lean  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("lean", [True, False], ids=["lean-get", "client-get"])
def test_read_resumes_after_a_broken_stream(s3_bucket: str, lean: bool) -> None:
    store = _store(s3_bucket)
    if not lean:
        store._lean = False
    data = _data(3 * MiB)
    _write(store, "k", data)
    gets = _sent(store, "GetObject")
    calls = _break_first_get(store)
    assert b"".join(store.read("k", chunk_size=MiB)) == data
    assert len(calls) == 2
    # The first GET went the lean way or through the client; the resume always goes
    # through the client, from where the stream broke, only if the object is unchanged.
    assert len(gets) == (1 if lean else 2)
    assert _header(gets[-1], "Range") == f"bytes={MiB}-"
    assert "If-Match" in gets[-1].headers


@pytest.mark.parametrize("lean", [True, False], ids=["lean-get", "client-get"])
def test_read_refuses_to_resume_a_changed_object(s3_server: S3Server, s3_bucket: str,
                                                 lean: bool) -> None:
    store = _store(s3_bucket)
    if not lean:
        store._lean = False
    _write(store, "k", _data(3 * MiB))

    def overwrite() -> None:
        s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"new")

    _break_first_get(store, overwrite)
    with pytest.raises(SourceChangedError):
        b"".join(store.read("k", chunk_size=MiB))


# -- endpoint, credentials and check() ------------------------------------------------------


def test_check_ok_and_path_style_with_env_endpoint(s3_server: S3Server, s3_bucket: str) -> None:
    store = _store(s3_bucket)  # endpoint from AWS_ENDPOINT_URL, set by the fixture
    assert store.endpoint == s3_server.endpoint
    store.check()
    gets = _sent(store, "ListObjectsV2")
    list(store.list())
    assert gets[0].url.startswith(f"{s3_server.endpoint}/{s3_bucket}?")


def test_explicit_endpoint_and_empty_ca_bundle(s3_server: S3Server, s3_bucket: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_CA_BUNDLE", "")  # would break any client that uses it
    store = _store(s3_bucket, endpoint=s3_server.endpoint)
    store.check()
    _write(store, "k", b"x")
    assert [o.key for o in store.list()] == ["k"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    _store(s3_bucket).check()


def test_aws_default_endpoint_and_region(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION",
                "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = _store("some-bucket")  # no request is made
    assert store.endpoint.startswith("https://") and "amazonaws.com" in store.endpoint
    assert store._client.meta.region_name == "us-east-1"
    assert store._client.meta.config.s3 is None or \
        store._client.meta.config.s3.get("addressing_style") != "path"


def test_check_missing_bucket(s3_server: S3Server) -> None:
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket-x' does not exist"):
        _store("no-such-bucket-x").check()


def test_list_missing_bucket(s3_server: S3Server) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(_store("no-such-bucket-y").list())


def test_check_unreachable_endpoint_fails_fast(s3_server: S3Server) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:1"):
        _store("bucket", endpoint="http://127.0.0.1:1").check()
    assert time.monotonic() - start < 5  # two attempts, not minutes of retries


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An endpoint that never completes a TCP handshake: a listener whose accept queue is full
    (Linux then drops further SYNs), like a firewalled host."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        conn = socket.socket()
        conn.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            conn.connect(server.getsockname())
        fillers.append(conn)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        for conn in fillers:
            conn.close()
        server.close()


def test_check_times_out_quickly_on_a_silent_endpoint(
        s3_server: S3Server, blackhole: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real values (a few seconds, 2 attempts) would make this test take ~10 s; shrink
    # them to show check() uses its own short-timeout client, not the 60 s default.
    assert s3_module._CHECK_CONFIG.connect_timeout <= 5
    monkeypatch.setattr(s3_module, "_CHECK_CONFIG", Config(
        connect_timeout=0.3, read_timeout=1,
        retries={"mode": "standard", "total_max_attempts": 2}))
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:"):
        _store("bucket", endpoint=blackhole).check()
    assert time.monotonic() - start < 5


def test_check_without_credentials(s3_server: S3Server, s3_bucket: str,
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials") as err:
        _store(s3_bucket).check()
    assert "AWS_PROFILE" in str(err.value)


def test_check_unknown_profile(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "does-not-exist")
    with pytest.raises(ConfigError, match="profile 'does-not-exist'"):
        _store("bucket").check()


# moto validates credentials only when started with INITIAL_NO_AUTH_ACTION_COUNT, so these
# tests run their own small moto server with authentication switched on.


class _AuthServer:
    def __init__(self, endpoint: str, key: str, secret: str) -> None:
        self.endpoint, self.key, self.secret = endpoint, key, secret


@pytest.fixture(scope="module")
def auth_server(s3_server: S3Server) -> Iterator[_AuthServer]:
    port = free_port()
    # The first 3 requests are free: a user, its access key and a bucket; the rest are checked.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
    except (OSError, RuntimeError) as exc:
        unavailable("moto S3 server with authentication", str(exc))
    endpoint = f"http://127.0.0.1:{port}"
    try:
        kw: dict[str, Any] = {"endpoint_url": endpoint, "region_name": "us-east-1",
                              "aws_access_key_id": "x", "aws_secret_access_key": "y"}
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        boto3.client("s3", **kw).create_bucket(Bucket="locked")
        yield _AuthServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        stop(proc)


@pytest.mark.parametrize(("key", "secret", "message"), [
    ("AKIAUNKNOWN000000000", "s3cr3t-unknown-key", "access key id is not known"),
    (None, "s3cr3t-wrong-secret", "secret key does not match"),
    (None, None, r"access to bucket 'locked' was denied"),
], ids=["unknown-key", "wrong-secret", "no-permission"])
def test_check_rejected_credentials(auth_server: _AuthServer, monkeypatch: pytest.MonkeyPatch,
                                    key: str | None, secret: str | None, message: str) -> None:
    key = key or auth_server.key
    secret = secret or auth_server.secret
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(ConfigError, match=message) as err:
        _store("locked", endpoint=auth_server.endpoint).check()
    text = f"{err.value} {err.value.message} {err.value.hint}"
    assert key not in text and secret not in text
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["Mon, 30 Nov 2026 01:47:03 GMT", "2026-11-30T01:47:03.000Z",
                                  "2026-11-30T01:47:03Z", "2026-11-30T01:47:03.123456Z",
                                  "2026-11-30T01:47:03+01:00", "1764467223", "not a date GMT"])
def test_fast_timestamps_agree_with_botocore(text: str) -> None:
    from botocore.utils import parse_timestamp

    from cloudshift.storage.s3 import _timestamp

    try:
        expected = parse_timestamp(text)
    except ValueError:
        with pytest.raises(ValueError):
            _timestamp(text)
        return
    got = _timestamp(text)
    assert got == expected and got.utcoffset() == expected.utcoffset()


# -- GetObject without the client call (s3_get.py) ------------------------------------------


def test_lean_get_answers_as_the_client_does(s3_bucket: str) -> None:
    store = _store(s3_bucket, "pre")
    data = _data(200_000)
    _write(store, "dir/k é", data, meta=META, part_size=PART)
    _write(store, "multi", _data(11 * MiB), part_size=PART)   # an ETag that is not an MD5
    gets = _sent(store, "GetObject")
    for key in ("dir/k é", "multi"):
        lean = store._lean_get(key)
        assert lean is not None and isinstance(store._lean, LeanGet) and store._lean.on
        client = store._get(key, {})
        assert _info_from_headers(key, lean) == _info_from_headers(key, client)
        assert b"".join(lean["Body"].iter_chunks(MiB)) == client["Body"].read()
    assert len(gets) == 2   # only the comparison requests went through the client
    info, chunks = store.open("dir/k é")
    assert b"".join(chunks) == data
    assert info.meta is not None and info.meta.user == USER_BACK and info.meta.mtime == MTIME
    assert info.checksums["md5"] == _md5(data)
    assert len(gets) == 2


def test_lean_get_leaves_a_missing_key_to_the_client(s3_bucket: str) -> None:
    store = _store(s3_bucket)
    gets = _sent(store, "GetObject")
    with pytest.raises(FileNotFoundError):
        store.open("absent")
    assert len(gets) == 1 and isinstance(store._lean, LeanGet) and store._lean.on


def test_lean_get_checks_a_stored_crc32(s3_server: S3Server, s3_bucket: str) -> None:
    data = _data(300_000)
    s3_server.client().put_object(Bucket=s3_bucket, Key="c", Body=data,
                                  ChecksumAlgorithm="CRC32")
    store = _store(s3_bucket)
    lean = store._lean_get("c")
    assert lean is not None and isinstance(lean["Body"], _CheckedBody)
    assert b"".join(lean["Body"].iter_chunks(65536)) == data
    info, chunks = store.open("c")
    assert b"".join(chunks) == data and info.size == len(data)


def test_checked_body_refuses_bytes_that_differ() -> None:
    data = _data(70_000)
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    ok = _CheckedBody(StreamingBody(io.BytesIO(data), len(data)), "crc32", good)
    assert b"".join(ok.iter_chunks(4096)) == data
    bad = _CheckedBody(StreamingBody(io.BytesIO(data[:-1] + b"?"), len(data)), "crc32", good)
    with pytest.raises(FlexibleChecksumError):
        b"".join(bad.iter_chunks(4096))
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert b"".join(_CheckedBody(StreamingBody(io.BytesIO(data), len(data)), "sha256",
                                 sha).iter_chunks(999)) == data
