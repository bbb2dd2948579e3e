"""``cloudshift demo``: a shop's S3 bucket moves to Google Cloud Storage, on embedded servers.

Both servers run inside this process (moto for S3, gcp-storage-emulator for GCS), so the demo
needs no cloud account and no network. They are installed with the ``demo`` extra.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from cloudshift import api
from cloudshift.core.errors import ConfigError
from cloudshift.core.units import human_bytes
from cloudshift.render.objects import reporter

SRC_BUCKET = "shop-assets"
DST_BUCKET = "shop-assets-migrated"
CATEGORIES = ("shoes", "bags", "jackets", "hats", "watches", "scarves")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_servers() -> Iterator[tuple[str, str]]:
    """Start S3 (moto) and GCS (emulator) in this process; yield their endpoints."""
    try:
        from gcp_storage_emulator.server import create_server
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ConfigError("the demo needs its embedded servers",
                          hint="pip install 'cloudshift[demo]'") from exc
    for name in ("werkzeug", "gcp_storage_emulator", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
    s3_port, gcs_port = _free_port(), _free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    gcs = create_server("127.0.0.1", gcs_port, in_memory=True)
    gcs.start()
    try:
        yield f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{gcs_port}"
    finally:
        gcs.stop()
        s3.stop()


def _image(rng: random.Random, size: int) -> bytes:
    # A JPEG header, then noise: realistic size and incompressible, like real photos.
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(max(0, size - 11))


def _order_log(rng: random.Random, day: int, n: int) -> bytes:
    lines = []
    for i in range(rng.randint(20, 400)):
        lines.append(json.dumps({"order": f"2026-11-{day:02d}-{n:03d}-{i:04d}",
                                 "sku": f"SKU-{rng.randint(1, 99999):05d}",
                                 "qty": rng.randint(1, 4),
                                 "eur": round(rng.uniform(5, 400), 2)}))
    return gzip.compress(("\n".join(lines) + "\n").encode())


def fill_source(client: Any, objects: int, large_mib: int, seed: int = 7) -> tuple[int, int]:
    """Put a shop's data set into the S3 bucket: images, order logs, one large backup."""
    rng = random.Random(seed)
    jobs: list[dict[str, Any]] = []
    n_logs = max(1, objects // 5)
    n_images = max(1, objects - n_logs - (1 if large_mib else 0))
    for i in range(n_images):
        cat = CATEGORIES[i % len(CATEGORIES)]
        size = int(rng.lognormvariate(10.3, 0.7))  # median ~30 KB, a tail to ~300 KB
        jobs.append({"Key": f"products/images/{cat}/SKU-{i:05d}.jpg",
                     "Body": _image(rng, size), "ContentType": "image/jpeg",
                     "CacheControl": "public, max-age=86400",
                     "Metadata": {"sku": f"SKU-{i:05d}", "uploaded-by": "catalog-service"}})
    for i in range(n_logs):
        day = 1 + i % 28
        jobs.append({"Key": f"orders/2026/11/{day:02d}/orders-{i:04d}.jsonl.gz",
                     "Body": _order_log(rng, day, i), "ContentType": "application/x-ndjson",
                     "ContentEncoding": "gzip"})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kw: client.put_object(Bucket=SRC_BUCKET, **kw), jobs))
    total = sum(len(j["Body"]) for j in jobs)
    if large_mib:
        # Uploaded in parts, as real backups are: its S3 ETag is then not an MD5.
        from boto3.s3.transfer import TransferConfig

        data = rng.randbytes(large_mib * 1024 * 1024)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            client.upload_fileobj(f, SRC_BUCKET, "backups/db-2026-11-28.tar",
                                  ExtraArgs={"ContentType": "application/x-tar"},
                                  Config=TransferConfig(multipart_threshold=8 * 1024 * 1024,
                                                        multipart_chunksize=8 * 1024 * 1024))
        total += len(data)
    return len(jobs) + (1 if large_mib else 0), total


def run_demo(objects: int = 1000, large_mib: int = 48, transfers: int = 16,
             progress: bool | None = None) -> int:
    import boto3
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    console = Console(highlight=False)
    # Demo-only credentials for the embedded servers; nothing leaves this process.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["GOOGLE_CLOUD_PROJECT"] = "shop-demo"
    console.print("[bold]cloudshift demo[/]: a shop moves its assets from Amazon S3 to "
                  "Google Cloud Storage (embedded servers, no cloud account)")
    with embedded_servers() as (s3_url, gcs_url), tempfile.TemporaryDirectory() as home:
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=SRC_BUCKET)
        gcs = storage.Client(project="shop-demo",
                             credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                             client_options={"api_endpoint": gcs_url})
        gcs.create_bucket(DST_BUCKET)
        t0 = time.monotonic()
        count, size = fill_source(s3, objects, large_mib)
        console.print(f"1. filled s3://{SRC_BUCKET} with {count} objects "
                      f"({human_bytes(size)}): product images, order logs, a "
                      f"{large_mib} MiB backup  [{time.monotonic() - t0:.1f}s]")
        src, dst = f"s3://{SRC_BUCKET}", f"gs://{DST_BUCKET}"
        console.print(f"2. cloudshift plan {src} {dst} --src-region aws:us-east-1 "
                      "--dst-region gcp:us-central1")
        from cloudshift.cost.planner import plan

        estimate = plan(src, dst, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                        src_endpoint=s3_url, dst_endpoint=gcs_url)
        best = estimate.best
        console.print(f"   if these were real buckets: {best.total_usd:.4f} USD "
                      f"(requests {best.c_s.usd:.4f} + egress {best.c_d.usd:.4f} + "
                      f"workers {best.c_v.usd:.4f}), about {best.time_s:.0f} s via "
                      f"{best.name}")
        console.print(f"3. cloudshift copy {src} {dst}")
        sink = reporter("copy", json_lines=False, verbose=False, progress=progress)
        with sink:
            result = api.copy(src, dst, transfers=transfers, src_endpoint=s3_url,
                              dst_endpoint=gcs_url, job_dir=os.path.join(home, "job"),
                              on_event=sink)
        lv = result.levels
        console.print(f"   copied {result.copied} objects, {human_bytes(result.copied_bytes)} "
                      f"in {result.elapsed:.1f}s ({human_bytes(result.rate)}/s); "
                      f"{len(result.failures)} failed")
        console.print(f"   checked in flight: {lv.get('checksum', 0)} by checksum, "
                      f"{lv.get('size', 0)} by size only")
        console.print(f"4. cloudshift verify {src} {dst} --download")
        checked = api.verify(src, dst, download=True, transfers=transfers,
                             src_endpoint=s3_url, dst_endpoint=gcs_url)
        vl = checked.levels
        verdict = "[green]OK[/]" if checked.ok else "[red]DIFFERENCES FOUND[/]"
        console.print(f"   {verdict}: {checked.matched} match, {len(checked.missing)} missing, "
                      f"{len(checked.extra)} extra, {len(checked.mismatched)} mismatched")
        console.print(f"   verified by checksum: {vl.get('checksum', 0)}, by size only: "
                      f"{vl.get('size', 0)}, not verified: {vl.get('none', 0)}")
        console.print("5. the same commands work on real buckets: set your provider's "
                      "credentials and run `cloudshift copy s3://YOUR-BUCKET gs://YOUR-BUCKET`")
        return 0 if (result.ok and checked.ok) else 1
