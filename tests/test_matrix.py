"""Every ordered pair of backends: copy a fixed data set, verify it, and check what landed
through the destination provider's own SDK (not through cloudshift)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

import cloudshift
from cloudshift.core.checksums import hash_bytes
from cloudshift.storage import open_store
from cloudshift.storage.base import ByteStream, ObjectMeta
from cloudshift.storage.memory import MemoryStore
from cloudshift.transfer.engine import run
from cloudshift.transfer.journal import object_spec
from cloudshift.transfer.options import TransferOptions

KINDS = ("file", "mem", "s3", "gs", "az")
PART = 5 * 1024 * 1024
MTIME = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)


@dataclass(frozen=True)
class Obj:
    key: str
    data: bytes
    meta: ObjectMeta


def _dataset() -> list[Obj]:
    rnd = __import__("random").Random(42)
    return [
        Obj("index.html", b"<html>shop</html>",
            ObjectMeta(content_type="text/html; charset=utf-8", cache_control="max-age=300",
                       content_language="en", user={"owner": "web-team", "x-origin": "café"},
                       mtime=MTIME)),
        Obj("images/logo.png", rnd.randbytes(5000),
            ObjectMeta(content_type="image/png", mtime=MTIME)),
        Obj("logs/app.log.gz", rnd.randbytes(3000),
            ObjectMeta(content_type="application/gzip", content_encoding="gzip",
                       content_disposition='attachment; filename="app.log.gz"', mtime=MTIME)),
        Obj("empty.txt", b"", ObjectMeta(content_type="text/plain", mtime=MTIME)),
        Obj("unicode/ünï cödé ✓.txt", "grüße".encode(),
            ObjectMeta(content_type="text/plain", mtime=MTIME)),
        Obj("big/backup.tar", rnd.randbytes(PART + 1024 * 1024 + 3),
            ObjectMeta(content_type="application/x-tar", mtime=MTIME)),
    ]


DATASET = _dataset()


@dataclass
class Landed:
    data: bytes
    content_type: str | None = None
    content_encoding: str | None = None
    content_disposition: str | None = None
    cache_control: str | None = None
    user: dict[str, str] | None = None
    mtime: datetime | None = None


def _seed(uri: str) -> None:
    store = open_store(uri)
    for obj in DATASET:
        store.write(obj.key, ByteStream(iter([obj.data])), size=len(obj.data), meta=obj.meta,
                    checksums={}, part_size=PART)
    if uri.startswith("file://") or uri.startswith("/"):
        root = Path(uri.removeprefix("file://"))
        for obj in DATASET:
            os.utime(root / obj.key, (MTIME.timestamp(), MTIME.timestamp()))


def _mtime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), tz=UTC)


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path
          ) -> Callable[[str], tuple[str, Callable[[str], Landed]]]:
    """place(kind) -> (uri, read_back(key)) for a fresh empty location of that kind."""

    def make(kind: str) -> tuple[str, Callable[[str], Landed]]:
        tag = uuid.uuid4().hex[:8]
        if kind == "file":
            root = tmp_path / f"files-{tag}"

            def read_file(key: str) -> Landed:
                p = root / key
                return Landed(p.read_bytes(),
                              mtime=datetime.fromtimestamp(p.stat().st_mtime, tz=UTC))

            return str(root), read_file
        if kind == "mem":
            uri = f"mem://m{tag}/data"

            def read_mem(key: str) -> Landed:
                store = open_store(uri)
                assert isinstance(store, MemoryStore)
                info = store.stat(key)
                assert info is not None and info.meta is not None
                m = info.meta
                return Landed(b"".join(store.read(key)), m.content_type, m.content_encoding,
                              m.content_disposition, m.cache_control, dict(m.user), m.mtime)

            return uri, read_mem
        if kind == "s3":
            server = request.getfixturevalue("s3_server")
            bucket = request.getfixturevalue("s3_bucket")
            client = server.client()

            def read_s3(key: str) -> Landed:
                got = client.get_object(Bucket=bucket, Key=f"data/{key}")
                # S3 metadata is ASCII: non-ASCII values travel RFC 2047-encoded.
                user = {k: str(make_header(decode_header(v)))
                        for k, v in got.get("Metadata", {}).items()}
                return Landed(got["Body"].read(), got.get("ContentType"),
                              got.get("ContentEncoding"), got.get("ContentDisposition"),
                              got.get("CacheControl"), user, _mtime(user.get("mtime")))

            return f"s3://{bucket}/data", read_s3
        if kind == "gs":
            server = request.getfixturevalue("gcs_server")
            bucket = request.getfixturevalue("gcs_bucket")
            gbucket = server.client().bucket(bucket)

            def read_gs(key: str) -> Landed:
                blob = gbucket.get_blob(f"data/{key}")
                assert blob is not None, key
                user = dict(blob.metadata or {})
                props = (blob.content_type, blob.content_encoding, blob.content_disposition,
                         blob.cache_control)
                # A download refreshes the blob's properties from the response headers, which
                # the emulator leaves out: read them first, download through another handle.
                data = gbucket.blob(f"data/{key}").download_as_bytes(raw_download=True)
                return Landed(data, *props, user, _mtime(user.get("mtime")))

            return f"gs://{bucket}/data", read_gs
        server = request.getfixturevalue("azure_server")
        container = request.getfixturevalue("azure_container")
        cclient = server.client().get_container_client(container)

        def read_az(key: str) -> Landed:
            blob = cclient.get_blob_client(f"data/{key}")
            props = blob.get_blob_properties()
            cs = props.content_settings
            raw_user = dict(props.metadata or {})
            # Azure metadata names are identifiers; cloudshift encodes others reversibly.
            from cloudshift.storage.azure import decode_metadata

            user = decode_metadata(raw_user)
            data = blob.download_blob(decompress=False).readall()
            return Landed(data, cs.content_type, cs.content_encoding, cs.content_disposition,
                          cs.cache_control, user, _mtime(user.get("mtime")))

        return f"az://{container}/data", read_az

    return make


@pytest.mark.parametrize(("src_kind", "dst_kind"),
                         [p for p in itertools.permutations(KINDS, 2)],
                         ids=[f"{a}-to-{b}" for a, b in itertools.permutations(KINDS, 2)])
def test_copy_matrix(src_kind: str, dst_kind: str, place: Any, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))
    src, _ = place(src_kind)
    dst, read_back = place(dst_kind)
    _seed(src)

    result = run(object_spec("copy", src, dst), TransferOptions(transfers=4, part_size=PART))
    assert result.ok, result.failures
    assert result.copied == len(DATASET)
    assert result.copied_bytes == sum(len(o.data) for o in DATASET)
    # Every object was checked against a checksum the destination reported or validated.
    assert result.levels["checksum"] == len(DATASET), result.levels

    for obj in DATASET:
        landed = read_back(obj.key)
        assert hash_bytes(landed.data) == hash_bytes(obj.data), obj.key
        assert landed.mtime is not None and abs((landed.mtime - MTIME).total_seconds()) < 1, \
            (obj.key, landed.mtime)
        if dst_kind == "file" or src_kind == "file":
            continue  # a filesystem keeps bytes and mtime, not content headers
        m = obj.meta
        assert landed.content_type == m.content_type, obj.key
        assert landed.content_encoding == m.content_encoding, obj.key
        assert landed.content_disposition == m.content_disposition, obj.key
        assert landed.cache_control == m.cache_control, obj.key
        user = {k: v for k, v in (landed.user or {}).items() if k != "mtime"}
        assert user == dict(m.user), obj.key

    report = cloudshift.verify(src, dst, download=True)
    assert report.ok, report.problems
    assert report.levels["checksum"] == len(DATASET)

    again = run(object_spec("copy", src, dst), TransferOptions(transfers=4, part_size=PART))
    assert again.ok and again.copied == 0 and again.skipped == len(DATASET)
