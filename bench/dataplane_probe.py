"""Which data-plane library? Concurrent 4 KiB PUTs against a local moto S3 server.

Run: python bench/dataplane_probe.py [N] [CONCURRENCY]. Needs boto3 and moto[server]; obstore
and opendal are measured when installed. Runs each client in turn, A B C A B C ..., and
reports the median objects/s of each (the machine is shared and noisy).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
CONC = int(sys.argv[2]) if len(sys.argv) > 2 else 32
ROUNDS = 3
DATA = os.urandom(4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def boto3_threads(endpoint: str, bucket: str) -> None:
    import boto3
    from botocore.config import Config

    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     config=Config(max_pool_connections=CONC))
    tag = uuid.uuid4().hex[:6]
    with ThreadPoolExecutor(CONC) as pool:
        list(pool.map(lambda i: c.put_object(Bucket=bucket, Key=f"b/{tag}/{i}", Body=DATA),
                      range(N)))


def obstore_async(endpoint: str, bucket: str) -> None:
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, region="us-east-1", aws_allow_http=True,
                    access_key_id="testing", secret_access_key="testing",
                    virtual_hosted_style_request=False)
    tag = uuid.uuid4().hex[:6]

    async def main() -> None:
        sem = asyncio.Semaphore(CONC)

        async def one(i: int) -> None:
            async with sem:
                await obstore.put_async(store, f"o/{tag}/{i}", DATA)

        await asyncio.gather(*(one(i) for i in range(N)))

    asyncio.run(main())


def opendal_async(endpoint: str, bucket: str) -> None:
    import opendal

    op = opendal.AsyncOperator("s3", bucket=bucket, endpoint=endpoint, region="us-east-1",
                               access_key_id="testing", secret_access_key="testing")
    tag = uuid.uuid4().hex[:6]

    async def main() -> None:
        sem = asyncio.Semaphore(CONC)

        async def one(i: int) -> None:
            async with sem:
                await op.write(f"d/{tag}/{i}", DATA)

        await asyncio.gather(*(one(i) for i in range(N)))

    asyncio.run(main())


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_CA_BUNDLE", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket="probe")
        clients: dict[str, Callable[[str, str], None]] = {"boto3 + threads": boto3_threads}
        for name, fn, mod in (("obstore (async)", obstore_async, "obstore"),
                              ("opendal (async)", opendal_async, "opendal")):
            try:
                __import__(mod)
                clients[name] = fn
            except ImportError:
                print(f"{name}: not installed, skipped")
        rates: dict[str, list[float]] = {k: [] for k in clients}
        for _ in range(ROUNDS):
            for name, fn in clients.items():
                t0 = time.perf_counter()
                fn(endpoint, "probe")
                rates[name].append(N / (time.perf_counter() - t0))
        print(f"{N} x 4 KiB PUTs, concurrency {CONC}, {ROUNDS} rounds, median objects/s:")
        for name, r in rates.items():
            print(f"  {name:<18} {statistics.median(r):7.0f}   (runs: "
                  f"{', '.join(f'{x:.0f}' for x in r)})")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
