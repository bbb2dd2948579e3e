"""cloudshift vs rclone, side by side: the same data, the same servers, the same concurrency.

Each case runs the two tools in turn, A B A B ..., for --pairs pairs, each into a fresh
destination, timing wall clock and peak RSS with /usr/bin/time. It reports the median of the
per-pair time ratios (cloudshift / rclone), both medians, peak RSS, and for server-bound
cases the ceiling: the best a plain concurrent PUT loop reaches against the same server.
Results go to docs/benchmarks.md (between markers) and bench/out/results.json.

Needs: rclone and /usr/bin/time (Debian packages rclone, time), moto[server], Azurite in
.tools/ (scripts/test.sh installs it). Run with `make bench` or
`.venv/bin/python bench/run.py [--quick] [--cases small-local,small-s3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from servers import stop as stop_server  # type: ignore[import-not-found]  # noqa: E402

OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
TRANSFERS = 16
KiB, MiB = 1024, 1024 * 1024
PART = 16 * MiB   # both tools' part size in the S3 cases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server pid {proc.pid} exited ({proc.returncode}) before port "
                               f"{port} opened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing on port {port}")


@dataclass
class Run:
    seconds: float
    rss_mb: float


@dataclass
class CaseResult:
    case: str
    data: str
    route: str
    cloudshift: list[Run] = field(default_factory=list)
    rclone: list[Run] = field(default_factory=list)
    ceiling_obj_s: float | None = None
    ceiling_mb_s: float | None = None
    # What the ceiling loop does, and other loops measured against the same servers.
    ceiling_kind: str = ""
    other_ceilings: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    note: str = ""

    def ratios(self) -> list[float]:
        return [a.seconds / b.seconds for a, b in zip(self.cloudshift, self.rclone,
                                                       strict=True)]

    def summary(self) -> dict[str, object]:
        cs = statistics.median(r.seconds for r in self.cloudshift)
        rc = statistics.median(r.seconds for r in self.rclone)
        return {
            "case": self.case, "data": self.data, "route": self.route,
            "pairs": len(self.ratios()), "ratio_median": statistics.median(self.ratios()),
            "cloudshift_s": cs, "rclone_s": rc,
            "cloudshift_rss_mb": max(r.rss_mb for r in self.cloudshift),
            "rclone_rss_mb": max(r.rss_mb for r in self.rclone),
            "cloudshift_obj_s": self.objects / cs, "rclone_obj_s": self.objects / rc,
            "cloudshift_mb_s": self.bytes / MiB / cs, "rclone_mb_s": self.bytes / MiB / rc,
            "ceiling_obj_s": self.ceiling_obj_s, "ceiling_mb_s": self.ceiling_mb_s,
            "ceiling_kind": self.ceiling_kind, "other_ceilings": self.other_ceilings,
            "note": self.note,
        }


def timed(cmd: list[str], env: dict[str, str]) -> Run:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *cmd], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])} failed ({proc.returncode}): "
                               f"{proc.stderr[-800:]}")
        rss_kb = float(tf.read().strip().splitlines()[-1])
    return Run(elapsed, rss_kb / 1024)


class Servers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="cs-bench-srv-"))
        self.s3_port = free_port()
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # rclone reaches Azurite through a per-container SAS URL (see az_sas_url), so any
        # port will do. Telemetry off: Azurite 3.35 otherwise keeps trying to reach Azure.
        self.az_port = free_port()
        self.procs.append(self._azurite())
        try:
            for proc, port in zip(self.procs, (self.s3_port, self.az_port), strict=True):
                wait_port(port, proc)
        except RuntimeError:
            self.stop()
            raise
        self.s3 = f"http://127.0.0.1:{self.s3_port}"
        self.az = f"http://127.0.0.1:{self.az_port}/{ACCOUNT}"

    def _azurite(self) -> subprocess.Popen[bytes]:
        azurite = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
        return subprocess.Popen(
            [str(azurite), "--blobHost", "127.0.0.1", "--blobPort", str(self.az_port),
             "--skipApiVersionCheck", "--silent", "--loose", "--inMemoryPersistence",
             "--disableTelemetry"],
            cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart_azurite(self) -> None:
        """A fresh, empty Azurite on the same port. In memory, Azurite slows down as it
        holds more blobs (measured: a 2,000-blob copy took 20 s, then 29 s, then 36 s as
        containers were left in place), and deleting a container once took over ten
        minutes; every timed run therefore starts on a fresh one."""
        stop_server(self.procs[1])
        self.procs[1] = self._azurite()
        wait_port(self.az_port, self.procs[1])

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_ENDPOINT_URL=self.s3,
                   AWS_DEFAULT_REGION="us-east-1",
                   AZURE_STORAGE_CONNECTION_STRING=(
                       f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"BlobEndpoint={self.az};"),
                   RCLONE_CONFIG_S3_TYPE="s3", RCLONE_CONFIG_S3_PROVIDER="Other",
                   RCLONE_CONFIG_S3_ENDPOINT=self.s3, RCLONE_CONFIG_S3_ACCESS_KEY_ID="bench",
                   RCLONE_CONFIG_S3_SECRET_ACCESS_KEY="bench",
                   RCLONE_CONFIG_S3_REGION="us-east-1",
                   # The az remote gets its SAS URL per run (az_sas_url): rclone 1.60's
                   # azureblob has no endpoint URL option (endpoint is a domain suffix), and
                   # with use_emulator Debian's 1.60.1 sends requests with an empty URL
                   # ('unsupported protocol scheme ""') and retries them forever.
                   RCLONE_CONFIG_AZ_TYPE="azureblob",
                   CLOUDSHIFT_HOME=str(self.tmp / "home"))
        return env

    def s3_client(self) -> S3Client:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.s3, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench",
                            config=Config(max_pool_connections=64))

    def az_client(self, pool: int = 10) -> Any:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import BlobServiceClient

        # The SDK's default requests pool keeps 10 connections: too few for 16 threads.
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
        return BlobServiceClient.from_connection_string(
            self.env()["AZURE_STORAGE_CONNECTION_STRING"],
            transport=RequestsTransport(session=session))

    def az_sas_url(self, container: str) -> str:
        """A container SAS URL (read, add, create, write, delete, list; 1 hour) for rclone.

        With it rclone needs no account, key or endpoint; the remote path must still name
        the container (`az:CONTAINER/dir`), and rclone checks that it matches the URL's.
        """
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT, container, account_key=KEY,
            permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                               delete=True, list=True),
            expiry=datetime.now(UTC) + timedelta(hours=1))
        return f"{self.az}/{container}?{sas}"

    def new_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:10]}"
        self.s3_client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        c = self.s3_client()
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys: list[ObjectIdentifierTypeDef] = [{"Key": o["Key"]}
                                                   for o in page.get("Contents", [])]
            for i in range(0, len(keys), 1000):
                c.delete_objects(Bucket=name, Delete={"Objects": keys[i:i + 1000]})
        c.delete_bucket(Bucket=name)

    def new_container(self) -> str:
        name = f"c-{uuid.uuid4().hex[:10]}"
        self.az_client().create_container(name)
        return name

    def check_container(self, name: str, prefix: str, n: int) -> None:
        """Check the container holds n blobs under prefix. Containers are not deleted: the
        next run restarts Azurite (see restart_azurite)."""
        found = sum(1 for _ in self.az_client().get_container_client(name).list_blob_names(
            name_starts_with=prefix))
        if found != n:
            raise RuntimeError(f"container {name}: {found} blobs under {prefix!r}, "
                               f"expected {n}")

    def stop(self) -> None:
        for p in self.procs:
            stop_server(p)   # kills what has not exited after 10 s
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_files(root: Path, n: int, size: int, per_dir: int = 1000) -> None:
    root.mkdir(parents=True, exist_ok=True)
    blob = os.urandom(max(size, 1))
    for i in range(n):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        # Unique bytes per file (so no tool can dedupe), cheap to make.
        (d / f"f{i:07d}.bin").write_bytes(i.to_bytes(8, "little") + blob[8:size])


def cs_cmd(src: str, dst: str, extra: list[str] | None = None) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "cloudshift"), "copy", src, dst, "-t", str(TRANSFERS),
            "--no-progress", "--job-dir", tempfile.mkdtemp(prefix="cs-bench-job-"),
            *(extra or [])]


def rc_cmd(src: str, dst: str, extra: list[str] | None = None) -> list[str]:
    return ["rclone", "copy", src, dst, "--transfers", str(TRANSFERS), "--checkers",
            str(TRANSFERS), "--checksum", "-q", *(extra or [])]


@dataclass
class Trial:
    """One run's two commands (only one is run), its cleanup, and extra rclone env."""

    cs: list[str]
    rc: list[str]
    cleanup: Callable[[], None]
    rc_env: dict[str, str] = field(default_factory=dict)


def pairs(result: CaseResult, n: int, env: dict[str, str],
          make: Callable[[], Trial]) -> None:
    for i in range(n):
        for tool in ("cloudshift", "rclone"):
            t = make()
            cmd, run_env = (t.cs, env) if tool == "cloudshift" else (t.rc, {**env, **t.rc_env})
            run = timed(cmd, run_env)
            getattr(result, tool).append(run)
            t.cleanup()
            # Write out what the run and its cleanup left dirty, and let the disk finish
            # (deleting 20,000 files queues discards on a disk mounted with `discard`),
            # untimed: otherwise the next run pays for it (and cloudshift's end-of-run sync
            # would flush rclone's output).
            os.sync()
            settle_disk(Path(tempfile.gettempdir()))
            print(f"  {result.case} pair {i + 1} {tool}: {run.seconds:.2f}s "
                  f"{run.rss_mb:.0f} MB", flush=True)


def _disk_stat(path: Path) -> list[int] | None:
    dev = os.stat(path).st_dev
    try:
        text = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat").read_text()
    except OSError:
        return None
    return [int(x) for x in text.split()]


def settle_disk(path: Path, quiet_s: float = 1.0, limit_s: float = 60.0) -> float:
    """Wait until the disk holding ``path`` has had no I/O for ``quiet_s`` (at most
    ``limit_s``); returns the seconds waited. Linux block-device counters; elsewhere a no-op."""
    t0 = time.monotonic()
    last = _disk_stat(path)
    if last is None:
        return 0.0
    quiet_since = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        time.sleep(0.25)
        now = _disk_stat(path)
        # Field 9 is the I/O in flight; the others count completed reads, writes, discards.
        if now != last or (now is not None and len(now) > 8 and now[8]):
            quiet_since = time.monotonic()
            last = now
        elif time.monotonic() - quiet_since >= quiet_s:
            break
    return time.monotonic() - t0


def put_ceiling(put: Callable[[int], int], count: int, workers: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(put, range(count)))
    dt = time.perf_counter() - t0
    return count / dt, total / MiB / dt


@contextmanager
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cs-bench-data-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def case_small_local(srv: Servers, n_pairs: int, scale: float) -> CaseResult:
    n = int(20_000 * scale)
    res = CaseResult("small-local", f"{n:,} x 4 KiB", "file -> file", objects=n,
                     bytes=n * 4 * KiB)
    with workdir() as w:
        make_files(w / "src", n, 4 * KiB)

        def make() -> Trial:
            dst = w / f"dst-{uuid.uuid4().hex[:6]}"
            return Trial(cs_cmd(str(w / "src"), str(dst)), rc_cmd(str(w / "src"), str(dst)),
                         lambda: shutil.rmtree(dst, ignore_errors=True))

        pairs(res, n_pairs, srv.env(), make)
    return res


def case_to_s3(srv: Servers, n_pairs: int, name: str, n: int, size: int,
               data: str) -> CaseResult:
    res = CaseResult(name, data, "file -> S3 (moto)", objects=n, bytes=n * size)
    extra_cs = ["--part-size", "16MiB"]   # = PART
    extra_rc = ["--s3-chunk-size", "16M", "--s3-upload-cutoff", "16M"]
    with workdir() as w:
        make_files(w / "src", n, size)

        def make() -> Trial:
            bucket = srv.new_bucket()
            return Trial(cs_cmd(str(w / "src"), f"s3://{bucket}/data", extra_cs),
                         rc_cmd(str(w / "src"), f"s3:{bucket}/data", extra_rc),
                         lambda: srv.drop_bucket(bucket))

        pairs(res, n_pairs, srv.env(), make)
        bucket = srv.new_bucket()
        client = srv.s3_client()
        files = sorted((w / "src").rglob("*.bin"))

        def put(i: int) -> int:
            body = files[i].read_bytes()
            client.put_object(Bucket=bucket, Key=f"c/{i}", Body=body)
            return len(body)

        single = put_ceiling(put, n, TRANSFERS if n > 16 else n)
        if size <= PART:
            res.ceiling_obj_s, res.ceiling_mb_s = single
            res.ceiling_kind = "PUT loop"
        else:
            # Both tools send objects this size in 16 MiB parts, so the comparable ceiling
            # is a loop of multipart uploads with the same part size and concurrency.
            res.ceiling_obj_s, res.ceiling_mb_s = multipart_ceiling(client, bucket, files)
            res.ceiling_kind = "multipart loop, 16 MiB parts"
            res.other_ceilings.append(f"whole-object PUT loop: {single[0]:.2f} obj/s, "
                                      f"{single[1]:.1f} MB/s")
        srv.drop_bucket(bucket)
    return res


def multipart_ceiling(client: S3Client, bucket: str, files: list[Path]
                      ) -> tuple[float, float]:
    """Multipart uploads of ``files``: every part of every file on one TRANSFERS-thread pool,
    each upload completed when its parts are in."""
    t0 = time.perf_counter()
    uploads = [client.create_multipart_upload(Bucket=bucket, Key=f"m/{i}")["UploadId"]
               for i in range(len(files))]
    jobs = [(i, n, off) for i, f in enumerate(files)
            for n, off in enumerate(range(0, f.stat().st_size, PART), start=1)]

    def part(job: tuple[int, int, int]) -> tuple[int, int, str, int]:
        i, n, off = job
        with files[i].open("rb") as fh:
            fh.seek(off)
            body = fh.read(PART)
        etag = client.upload_part(Bucket=bucket, Key=f"m/{i}", UploadId=uploads[i],
                                  PartNumber=n, Body=body)["ETag"]
        return i, n, etag, len(body)

    with ThreadPoolExecutor(TRANSFERS) as pool:
        done = list(pool.map(part, jobs))
    for i in range(len(files)):
        parts = sorted((n, etag) for j, n, etag, _ in done if j == i)
        client.complete_multipart_upload(
            Bucket=bucket, Key=f"m/{i}", UploadId=uploads[i],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})
    total = sum(size for *_, size in done)
    dt = time.perf_counter() - t0
    return len(files) / dt, total / MiB / dt


def case_cross_cloud(srv: Servers, n_pairs: int, scale: float) -> CaseResult:
    n = int(2_000 * scale)
    size = 64 * KiB
    res = CaseResult("cross-cloud", f"{n:,} x 64 KiB", "S3 (moto) -> Azure Blob (Azurite)",
                     objects=n, bytes=n * size)
    bucket = srv.new_bucket()
    client = srv.s3_client()
    blob = os.urandom(size)
    with ThreadPoolExecutor(TRANSFERS) as pool:
        list(pool.map(lambda i: client.put_object(
            Bucket=bucket, Key=f"data/d{i // 1000:04d}/f{i:07d}.bin",
            Body=i.to_bytes(8, "little") + blob[8:]), range(n)))

    def make() -> Trial:
        srv.restart_azurite()
        container = srv.new_container()
        return Trial(cs_cmd(f"s3://{bucket}/data", f"az://{container}/data"),
                     rc_cmd(f"s3:{bucket}/data", f"az:{container}/data"),
                     lambda: srv.check_container(container, "data/", n),
                     {"RCLONE_CONFIG_AZ_SAS_URL": srv.az_sas_url(container)})

    pairs(res, n_pairs, srv.env(), make)
    srv.restart_azurite()
    # Ceilings: plain TRANSFERS-thread loops. The route's own: GET each object from moto and
    # PUT it to Azurite. And Azurite alone: PUT n blobs of the same size.
    container = srv.new_container()
    cc = srv.az_client(pool=TRANSFERS).get_container_client(container)

    def get_put(i: int) -> int:
        body = client.get_object(Bucket=bucket,
                                 Key=f"data/d{i // 1000:04d}/f{i:07d}.bin")["Body"].read()
        cc.upload_blob(f"g/{i}", body, overwrite=True)
        return len(body)

    def put(i: int) -> int:
        cc.upload_blob(f"c/{i}", blob, overwrite=True)
        return size

    res.ceiling_obj_s, res.ceiling_mb_s = put_ceiling(get_put, n, TRANSFERS)
    res.ceiling_kind = "GET->PUT loop"
    put_only = put_ceiling(put, n, TRANSFERS)
    res.other_ceilings.append(f"Azurite PUT loop alone: {put_only[0]:.0f} obj/s, "
                              f"{put_only[1]:.1f} MB/s")
    srv.drop_bucket(bucket)
    return res


def case_many_objects(srv: Servers, n_pairs: int, scale: float) -> CaseResult:
    n = int(1_000_000 * scale)
    res = CaseResult("many-objects", f"{n:,} objects (copy --dry-run)",
                     "file -> file (empty)", objects=n, bytes=n * 4)
    with workdir() as w:
        make_files(w / "src", n, 4)

        def make() -> Trial:
            dst = w / f"dst-{uuid.uuid4().hex[:6]}"
            return Trial(cs_cmd(str(w / "src"), str(dst), ["--dry-run"]),
                         rc_cmd(str(w / "src"), str(dst), ["--dry-run"]), lambda: None)

        pairs(res, n_pairs, srv.env(), make)
    return res


MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"


def _rate(obj_s: object) -> str:
    v = float(obj_s)  # type: ignore[arg-type]
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def write_doc(results: list[dict[str, object]], quick: bool) -> None:
    lines = [MARK_START, "",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{os.cpu_count()} cores, rclone {rclone_version()}, transfers {TRANSFERS}"
             f"{', QUICK (reduced sizes)' if quick else ''}.", "",
             "| case | data | route | pairs | ratio cloudshift/rclone (median) | cloudshift s "
             "| rclone s | cloudshift peak RSS MB | rclone peak RSS MB | cloudshift obj/s, MB/s "
             "| rclone obj/s, MB/s | server ceiling obj/s, MB/s | cloudshift % of ceiling |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    others: list[str] = []
    for r in results:
        ceiling, share = "-", "-"
        if r["ceiling_obj_s"] is not None:
            obj_s, mb_s = float(r["ceiling_obj_s"]), float(r["ceiling_mb_s"])  # type: ignore[arg-type]
            kind = f" ({r['ceiling_kind']})" if r.get("ceiling_kind") else ""
            ceiling = f"{_rate(obj_s)}, {mb_s:.1f}{kind}"
            share = f"{100 * float(r['cloudshift_mb_s']) / mb_s:.0f}%"  # type: ignore[arg-type]
        extra = r.get("other_ceilings") or []
        assert isinstance(extra, list)
        others += [f"- {r['case']}, other ceiling: {o}" for o in extra]
        lines.append(
            f"| {r['case']} | {r['data']} | {r['route']} | {r['pairs']} "
            f"| **{r['ratio_median']:.2f}** | {r['cloudshift_s']:.2f} | {r['rclone_s']:.2f} "
            f"| {r['cloudshift_rss_mb']:.0f} | {r['rclone_rss_mb']:.0f} "
            f"| {_rate(r['cloudshift_obj_s'])}, {r['cloudshift_mb_s']:.1f} "
            f"| {_rate(r['rclone_obj_s'])}, {r['rclone_mb_s']:.1f} | {ceiling} | {share} |")
    if others:
        lines += ["", *others]
    lines += ["", MARK_END]
    block = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{MARK_START}\n{MARK_END}\n"
    text = re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), lambda _m: block,
                  text, flags=re.S)
    DOC.write_text(text)


def rclone_version() -> str:
    out = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout
    return out.split()[1] if out else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 pairs: a smoke run")
    ap.add_argument("--cases", default="small-local,small-s3,large-s3,cross-cloud,many-objects")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other cases' results from bench/out/results.json")
    args = ap.parse_args()
    for tool in ("rclone", "/usr/bin/time"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing: apt-get install -y rclone time")
    scale = 0.05 if args.quick else 1.0
    n_pairs = 2 if args.quick else args.pairs
    srv = Servers()
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, object]] = []
    earlier: list[dict[str, object]] = []
    if args.merge and (OUT / "results.json").exists():
        earlier = [r for r in json.loads((OUT / "results.json").read_text())["results"]
                   if r["case"] not in args.cases.split(",")]
    try:
        for case in args.cases.split(","):
            print(f"== {case}", flush=True)
            if case == "small-local":
                r = case_small_local(srv, n_pairs, scale)
            elif case == "small-s3":
                r = case_to_s3(srv, n_pairs, "small-s3", int(2000 * scale), 64 * KiB,
                               f"{int(2000 * scale):,} x 64 KiB")
            elif case == "large-s3":
                size = 256 * MiB if not args.quick else 24 * MiB
                r = case_to_s3(srv, n_pairs, "large-s3", 4, size,
                               f"4 x {size // MiB} MiB")
            elif case == "cross-cloud":
                r = case_cross_cloud(srv, n_pairs, scale)
            elif case == "many-objects":
                r = case_many_objects(srv, n_pairs, 0.01 if args.quick else 1.0)
            else:
                sys.exit(f"bench: unknown case {case}")
            results.append(r.summary())
            (OUT / "results.json").write_text(json.dumps(
                {"results": earlier + results, "runs": [asdict(r)]}, indent=1))
            print(json.dumps(results[-1]), flush=True)
    finally:
        srv.stop()
    if not args.no_doc:
        order = {c: i for i, c in enumerate(
            ["small-local", "small-s3", "large-s3", "cross-cloud", "many-objects"])}
        write_doc(sorted(earlier + results, key=lambda r: order.get(str(r["case"]), 99)),
                  args.quick)


if __name__ == "__main__":
    main()
