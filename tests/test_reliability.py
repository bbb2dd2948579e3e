"""Transfers under injected faults: throttling, server errors, resets, stalls, truncation,
corrupted bytes, failing objects, rate limits. The destination must end identical to the
source (checked by hashing the bytes), with nothing lost and nothing corrupt."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import cloudshift
from cloudshift.storage import open_store
from cloudshift.storage.memory import MemoryStore
from cloudshift.transfer.engine import Engine
from cloudshift.transfer.journal import object_spec
from cloudshift.transfer.options import TransferOptions
from faults import FaultProxy
from servers import unavailable
from servers.azure import ACCOUNT, AzureServer
from servers.gcs import GCSServer
from servers.s3 import S3Server

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[Callable[[str], FaultProxy]]:
    made: list[FaultProxy] = []

    def make(upstream: str, seed: int = 1234) -> FaultProxy:
        p = FaultProxy(upstream, seed)
        made.append(p)
        return p

    yield make
    for i, p in enumerate(made):
        p.report(f"{request.node.name}#{i}")
        p.stop()


def mem_source(n: int, size: int = 2048, big: int = 0) -> tuple[str, dict[str, bytes]]:
    uri = f"mem://src{uuid.uuid4().hex[:8]}"
    store = open_store(uri)
    assert isinstance(store, MemoryStore)
    data = {f"obj/{i:04d}.bin": os.urandom(size) for i in range(n)}
    if big:
        data["big/archive.tar"] = os.urandom(big)
    for k, v in data.items():
        store.put_bytes(k, v)
    return uri, data


def run(src: str, dst: str, **opts: object) -> tuple[cloudshift.TransferResult, Engine]:
    src_ep = opts.pop("src_endpoint", None)
    dst_ep = opts.pop("dst_endpoint", None)
    spec = object_spec("copy", src, dst, src_endpoint=src_ep,  # type: ignore[arg-type]
                       dst_endpoint=dst_ep)  # type: ignore[arg-type]
    engine = Engine(spec, TransferOptions(part_size=PART, **opts))  # type: ignore[arg-type]
    return engine.run(), engine


def assert_identical(src: str, dst: str) -> None:
    report = cloudshift.verify(src, dst, download=True)
    assert report.ok, report.problems[:5]
    assert report.levels["checksum"] == report.matched


def test_throttling_backs_off_then_recovers(s3_server: S3Server, s3_bucket: str,
                                            proxy: Callable[[str], FaultProxy]) -> None:
    p = proxy(s3_server.endpoint)
    p.add("503", method="PUT", rate=0.35, limit=60)
    src, data = mem_source(240)
    dst = f"s3://{s3_bucket}/t"
    result, engine = run(src, dst, dst_endpoint=p.url, transfers=8)
    assert result.ok, result.failures[:3]
    assert result.copied == len(data)
    assert p.faults()["503"] == 60
    assert result.throttled == 60
    assert result.lowest_concurrency < 8  # backed off ...
    assert engine.traffic.concurrency.limit > result.lowest_concurrency  # ... and recovered
    assert_identical(src, dst)


def test_429_from_gcs_is_retried(gcs_server: GCSServer, gcs_bucket: str,
                                 proxy: Callable[[str], FaultProxy]) -> None:
    p = proxy(gcs_server.endpoint)
    p.add("429", method="POST", rate=0.3, limit=25)
    src, data = mem_source(80)
    dst = f"gs://{gcs_bucket}/t"
    result, _ = run(src, dst, dst_endpoint=p.url, transfers=4)
    assert result.ok and result.copied == len(data)
    assert result.throttled == p.faults()["429"] > 0
    assert_identical(src, dst)


def test_errors_resets_stalls_and_truncation_both_ways(
        s3_server: S3Server, s3_bucket: str, azure_server: AzureServer, azure_container: str,
        proxy: Callable[[str], FaultProxy]) -> None:
    # Source: S3 behind a proxy that breaks reads; destination: Azure behind one that
    # breaks writes.
    seed_src, data = mem_source(60, big=2 * PART + 123)
    src = f"s3://{s3_bucket}/src"
    assert cloudshift.copy(seed_src, src).ok
    ps, pd = proxy(s3_server.endpoint, seed=1), proxy(azure_server.endpoint.rsplit("/", 1)[0],
                                                       seed=2)
    for fault, rate in (("500", 0.08), ("reset", 0.05), ("truncate", 0.08),
                        ("stall", 0.03)):
        ps.add(fault, method="GET", path=r"/src/", rate=rate, stall_s=3.0)
    for fault, rate in (("500", 0.08), ("502", 0.05), ("reset", 0.05)):
        pd.add(fault, method="PUT", rate=rate)
    dst = f"az://{azure_container}/t"
    result, _ = run(src, dst, src_endpoint=ps.url, dst_endpoint=f"{pd.url}/{ACCOUNT}",
                    transfers=6, timeout=2.0)
    assert result.ok, result.failures[:3]
    assert result.copied == len(data)
    injected = {**{f"src:{k}": v for k, v in ps.faults().items()},
                **{f"dst:{k}": v for k, v in pd.faults().items()}}
    assert sum(injected.values()) >= 10, injected
    assert_identical(seed_src, dst)


@pytest.mark.parametrize("dst_kind", ["s3", "az", "gs"])
def test_flipped_bytes_are_caught_and_resent(
        dst_kind: str, request: pytest.FixtureRequest,
        proxy: Callable[[str], FaultProxy]) -> None:
    src, _data = mem_source(40, size=4096, big=PART + 77)
    if dst_kind == "s3":
        server = request.getfixturevalue("s3_server")
        dst = f"s3://{request.getfixturevalue('s3_bucket')}/t"
        p = proxy(server.endpoint)
        endpoint = p.url
        p.add("flip-request", method="PUT", rate=0.3, limit=12)
    elif dst_kind == "az":
        server = request.getfixturevalue("azure_server")
        dst = f"az://{request.getfixturevalue('azure_container')}/t"
        p = proxy(server.endpoint.rsplit("/", 1)[0])
        endpoint = f"{p.url}/{ACCOUNT}"
        p.add("flip-request", method="PUT", rate=0.3, limit=12)
    else:
        server = request.getfixturevalue("gcs_server")
        dst = f"gs://{request.getfixturevalue('gcs_bucket')}/t"
        p = proxy(server.endpoint)
        endpoint = p.url
        # At most 12 flips in all, so no object can be unlucky on every attempt.
        p.add("flip-request", method="POST", rate=0.3, limit=6)
        p.add("flip-request", method="PUT", rate=0.3, limit=6)
    result, _ = run(src, dst, dst_endpoint=endpoint, transfers=4, retries=6)
    assert result.ok, result.failures[:3]
    flipped = sum(p.faults().values())
    assert flipped >= 5
    # Every object is good on the destination, whatever was flipped on the way.
    assert_identical(src, dst)


def test_corrupt_reads_from_the_source_are_caught(
        gcs_server: GCSServer, gcs_bucket: str, tmp_path: Path,
        proxy: Callable[[str], FaultProxy]) -> None:
    seed, _data = mem_source(40, size=3000)
    src = f"gs://{gcs_bucket}/src"
    assert cloudshift.copy(seed, src).ok
    p = proxy(gcs_server.endpoint)
    p.add("flip-response", method="GET", path=r"alt=media", rate=0.3, limit=12)
    dst = str(tmp_path / "dst")
    result, _ = run(src, dst, src_endpoint=p.url, transfers=4, retries=6)
    assert result.ok, result.failures[:3]
    assert p.faults()["flip-response"] >= 5
    assert_identical(seed, dst)


def test_an_object_that_keeps_failing_is_named_and_the_rest_complete(
        s3_server: S3Server, s3_bucket: str, proxy: Callable[[str], FaultProxy]) -> None:
    src, data = mem_source(30)
    p = proxy(s3_server.endpoint)
    p.add("403", method="PUT", path=r"obj/0007\.bin")
    dst = f"s3://{s3_bucket}/t"
    result, _ = run(src, dst, dst_endpoint=p.url, transfers=4, retries=2)
    assert [f.key for f in result.failures] == ["obj/0007.bin"]
    assert "AccessDenied" in result.failures[0].reason
    assert result.copied == len(data) - 1
    assert p.count("PUT", r"obj/0007\.bin", reached=None) == 2  # our two attempts


def test_source_deleted_or_changed_during_the_copy(
        s3_server: S3Server, s3_bucket: str, tmp_path: Path,
        proxy: Callable[[str], FaultProxy]) -> None:
    client = s3_server.client()
    for i in range(10):
        client.put_object(Bucket=s3_bucket, Key=f"k{i}", Body=b"v1-" + bytes([65 + i]) * 100)
    p = proxy(s3_server.endpoint)
    p.add("hook", method="GET", path=r"/k3$", limit=1,
          hook=lambda m, path: client.delete_object(Bucket=s3_bucket, Key="k3"))
    p.add("hook", method="GET", path=r"/k5$", limit=1,
          hook=lambda m, path: client.put_object(Bucket=s3_bucket, Key="k5",
                                                 Body=b"version two, longer than before"))
    dst = tmp_path / "dst"
    result, _ = run(f"s3://{s3_bucket}", str(dst), src_endpoint=p.url, transfers=2)
    assert [f.key for f in result.failures] == ["k3"]
    assert "deleted" in result.failures[0].reason
    assert (dst / "k5").read_bytes() == b"version two, longer than before"
    assert result.copied == 9


@contextmanager
def tmpfs(mnt: Path, options: str) -> Iterator[Path]:
    """A small filesystem of our own (needs root, as sessions and CI have)."""
    mnt.mkdir()
    if os.system(f"mount -t tmpfs -o {options} tmpfs {mnt} 2>/dev/null") != 0:
        unavailable("a tmpfs mount", "mount -t tmpfs failed (needs root)")
    try:
        yield mnt
    finally:
        os.system(f"umount {mnt}")


def test_destination_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small-disk", "size=2m") as mnt:
        src, data = mem_source(6, size=700 * 1024)
        result, _ = run(src, str(mnt / "dst"), transfers=2, retries=1)
        assert result.failures, "a 2 MiB disk cannot hold 4.1 MiB"
        assert all("No space left" in f.reason for f in result.failures)
        assert result.copied + len(result.failures) == len(data)
        leftovers = [p.name for p in (mnt / "dst").rglob("*") if "partial" in p.name]
        assert leftovers == []
        for f in (mnt / "dst").rglob("*.bin"):
            assert f.read_bytes() == data[f.relative_to(mnt / "dst").as_posix()]


def test_read_only_destination(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro-disk", "size=4m,ro") as mnt:
        src, data = mem_source(3, size=1000)
        result, _ = run(src, str(mnt), transfers=2, retries=1)
        assert len(result.failures) == len(data)
        assert all("Read-only file system" in f.reason for f in result.failures)


def test_bwlimit_is_honoured(tmp_path: Path) -> None:
    src, _data = mem_source(12, size=512 * 1024)  # 6 MiB
    rate = 2 * MiB
    started = time.monotonic()
    result, _ = run(src, f"mem://dst{uuid.uuid4().hex[:6]}", transfers=4, bwlimit=rate)
    elapsed = time.monotonic() - started
    assert result.ok
    achieved = result.copied_bytes / elapsed
    assert 0.9 * rate <= achieved <= 1.1 * rate, achieved / rate


def test_max_rps_is_honoured(s3_server: S3Server, s3_bucket: str,
                             proxy: Callable[[str], FaultProxy]) -> None:
    src, _data = mem_source(160, size=512)
    p = proxy(s3_server.endpoint)
    rps = 40.0
    result, _ = run(src, f"s3://{s3_bucket}/t", dst_endpoint=p.url, transfers=8, max_rps=rps)
    assert result.ok
    times = [e.at for e in p.log]
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert 0.9 * rps <= achieved <= 1.1 * rps, achieved
