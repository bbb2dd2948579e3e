"""``cloudshift prices update`` against recorded price-API responses served on loopback.

The real HTTP client code runs; only the internet is replaced, by a local server that answers
with the files under tests/data/prices/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cloudshift.assess import assess, workload_from_text
from cloudshift.catalog.update import update
from cloudshift.core.errors import ConfigError
from cloudshift.cost.model import TransferWorkload
from cloudshift.cost.planner import plan_workload
from cloudshift.cost.prices import PriceBook

DATA = Path(__file__).parent / "data" / "prices"
API_KEY = "AIzaFAKE-test-key-0123456789"
GiB = 2**30


class _Handler(BaseHTTPRequestHandler):
    seen: list[str] = []
    # Text replaced in the recorded responses: a price the provider has changed since the
    # shipped tables were written.
    rewrite: dict[str, str] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append(self.path)
        name = None
        if url.path == "/offers/v1.0/aws/AmazonS3/current/us-east-1/index.json":
            name = "aws_s3_us-east-1.json"
        elif url.path == "/api/retail/prices":
            name = ("azure_eastus_page2.json" if query.get("page") == ["2"]
                    else "azure_eastus_page1.json")
            if "page" not in query and "eastus" not in query.get("$filter", [""])[0]:
                name = None
        elif url.path == "/v1/services/95FF-2EF5-5EA1/skus":
            if query.get("key") != [API_KEY]:
                self.send_error(403)
                return
            name = ("gcp_gcs_skus_page2.json" if query.get("pageToken") == ["page2"]
                    else "gcp_gcs_skus.json")
        if name is None:
            self.send_error(404)
            return
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        text = (DATA / name).read_text().replace("{base}", base)
        for old, new in self.rewrite.items():
            text = text.replace(old, new)
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def price_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _endpoints(base: str) -> dict[str, str]:
    return {"aws": base, "azure": base, "gcp": base}


def test_update_reads_all_three_apis(price_api: str, tmp_path: Path) -> None:
    res = update(["aws:us-east-1", "azure:eastus", "gcp:us-central1"], folder=tmp_path,
                 gcp_api_key=API_KEY, endpoints=_endpoints(price_api), today="2026-11-29")
    rows = {(r["region"], r["storage_class"]): r for r in res.rows}
    std = rows[("aws:us-east-1", "STANDARD")]
    # First tier of the storage price, requests scaled from per-request to per-1,000.
    assert float(std["gb_month"]) == pytest.approx(0.023)
    assert float(std["write_1k"]) == pytest.approx(0.005)
    assert float(std["read_1k"]) == pytest.approx(0.0004)
    assert float(rows[("aws:us-east-1", "DEEP_ARCHIVE")]["gb_month"]) == pytest.approx(0.00099)
    hot = rows[("azure:eastus", "HOT")]
    assert float(hot["gb_month"]) == pytest.approx(0.0184)  # tier 0 row, not the 50 TB+ one
    assert float(hot["write_1k"]) == pytest.approx(0.005)   # 0.05 per 10K
    assert float(hot["read_1k"]) == pytest.approx(0.0004)
    archive = rows[("azure:eastus", "ARCHIVE")]               # from the second page
    assert float(archive["restore_1k"]) == pytest.approx(0.5)
    assert float(archive["restore_gb"]) == pytest.approx(0.02)
    gstd = rows[("gcp:us-central1", "STANDARD")]
    assert float(gstd["gb_month"]) == pytest.approx(0.02)
    assert float(gstd["write_1k"]) == pytest.approx(0.005)   # 5000 nanos per op
    assert float(gstd["read_1k"]) == pytest.approx(0.0004)
    assert float(rows[("gcp:us-central1", "NEARLINE")]["retrieval_gb"]) == pytest.approx(0.01)
    assert ("gcp:europe-west1", "STANDARD") not in rows      # other regions are left out
    assert all(r["as_of"] == "2026-11-29" for r in res.rows)

    # The planner now cites the API and the fetch date for the refreshed fields only.
    book = PriceBook.load(user_dir=tmp_path)
    sp, _ = book.storage_prices(book.region("aws:us-east-1"), "STANDARD")
    assert sp.write_1k.as_of == "2026-11-29" and "Price List" in sp.write_1k.source
    assert sp.retrieval_gb.source.startswith("Amazon S3 pricing")  # not in the update
    sp, _ = book.storage_prices(book.region("aws:us-west-2"), "STANDARD")
    assert sp.write_1k.source.startswith("Amazon S3 pricing")      # region not refreshed


def test_one_update_reaches_both_plan_and_assess(price_api: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # S3 Standard in us-east-1 went from the shipped 0.023 to 0.031 USD/GB-month.
    monkeypatch.setattr(_Handler, "rewrite", {'"0.0230000000"': '"0.0310000000"'})
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path))
    res = update(["aws:us-east-1"], endpoints=_endpoints(price_api), today="2026-12-01")
    assert res.path == tmp_path / "prices" / "storage.csv"

    # The planner: 100 GB kept in S3 Standard at the source, per month.
    wl = TransferWorkload.of([(GiB, "STANDARD", 100)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1", workers=1)
    assert p.running.src_usd_month == pytest.approx(100 * 0.031)
    (price,) = p.running.src_prices
    assert price.as_of == "2026-12-01" and "Price List" in price.source

    # The assessment: the same 100 GB as hot storage in us-east-1.
    spec = workload_from_text("name: t\nstorage:\n  hot: {gb: 100}\n"
                              "requirements:\n  regions: [aws:us-east-1]\n", "w.yaml")
    r = assess(spec)
    (option,) = r.options
    hot = next(line for line in option.lines if line.item == "hot storage")
    assert hot.monthly_usd == pytest.approx(100 * 0.031)
    assert "$0.031/GB-month" in hot.detail
    assert r.data["storage.csv"] == f"packaged, updated from {res.path}"

    # A rate the update did not fetch keeps its shipped value and source.
    book = PriceBook.load()
    sp, _ = book.storage_prices(book.region("aws:us-east-1"), "STANDARD_IA")
    assert sp.retrieval_gb.value == 0.01 and sp.retrieval_gb.source.startswith("Amazon S3")


def test_update_without_gcp_key_skips_gcp_and_keeps_earlier_rows(price_api: str,
                                                                 tmp_path: Path) -> None:
    update(["azure:eastus"], folder=tmp_path, endpoints=_endpoints(price_api))
    res = update(["gcp:us-central1", "aws:us-east-1"], folder=tmp_path,
                 endpoints=_endpoints(price_api))
    assert any("API key" in s for s in res.skipped)
    regions = {r["region"] for r in res.rows}
    assert regions == {"azure:eastus", "aws:us-east-1"}


def test_api_errors_are_one_line_without_the_key(price_api: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        update(["gcp:us-central1"], folder=tmp_path, gcp_api_key="wrong-key",
               endpoints=_endpoints(price_api))
    assert "HTTP 403" in str(err.value) and "wrong-key" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        update(["aws:us-east-1"], folder=tmp_path, endpoints={"aws": "http://127.0.0.1:9"})
    assert "cannot reach" in str(err.value)
    assert not (tmp_path / "storage.csv").exists()


def test_cli_prices_update_json(price_api: str, tmp_path: Path) -> None:
    env = {**os.environ, "CLOUDSHIFT_HOME": str(tmp_path), "CLOUDSHIFT_AZURE_PRICING_URL":
           price_api, "CLOUDSHIFT_AWS_PRICING_URL": price_api}
    code = "from cloudshift.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "prices", "update", "--region",
                           "azure:eastus", "--json"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["path"] == str(tmp_path / "prices" / "storage.csv")
    assert {r["storage_class"] for r in doc["rows"]} == {"HOT", "COOL", "ARCHIVE"}
    proc = subprocess.run([sys.executable, "-c", code, "prices", "update", "--region",
                           "azure:eastsu"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "azure:eastus" in proc.stderr
    proc = subprocess.run([sys.executable, "-c", code, "prices", "show", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    shown = {json.loads(line)["id"]: json.loads(line) for line in proc.stdout.splitlines()}
    assert shown["azure-retail-api"]["as_of"] == datetime.now(UTC).date().isoformat()
    assert shown["skyplane-throughput"]["as_of"] == "2022-01-29"
