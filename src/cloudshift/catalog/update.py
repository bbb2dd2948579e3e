"""``cloudshift prices update``: refresh storage and request prices from the providers' APIs.

- AWS: the Price List bulk offer file for Amazon S3, one per region (public, no account).
- Azure: the Retail Prices API, filtered to Blob Storage in a region (public, no account).
- Google Cloud: the Cloud Billing Catalog API for Cloud Storage (needs an API key).

The result goes to ``$CLOUDSHIFT_HOME/prices/storage.csv`` (the installed package may be
read-only), with the fetch date as each row's date; the catalogue lays those rates over the
shipped ones, for the planner and the assessment alike. Endpoints are parameters so tests
serve recorded responses from a local server.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudshift.catalog.load import load_catalog, user_prices_dir
from cloudshift.catalog.records import STORAGE_FIELDS
from cloudshift.catalog.regions import REFERENCE_REGION, parse_region
from cloudshift.catalog.storage import UPDATED_FILE
from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.core.files import write_atomic

AWS_URL = "https://pricing.us-east-1.amazonaws.com"
AZURE_URL = "https://prices.azure.com"
GCP_URL = "https://cloudbilling.googleapis.com"
GCS_SERVICE = "95FF-2EF5-5EA1"  # Cloud Storage in the Cloud Billing Catalog
TIMEOUT_S = 60
MAX_PAGES = 50

Fetch = Callable[[str], Any]

# S3 Price List: storage volumeType -> class; request "group" -> (class, field).
_AWS_STORAGE = {"Standard": "STANDARD", "Standard - Infrequent Access": "STANDARD_IA",
                "One Zone - Infrequent Access": "ONEZONE_IA", "Amazon Glacier": "GLACIER",
                "Glacier Flexible Retrieval": "GLACIER", "Glacier Deep Archive": "DEEP_ARCHIVE",
                "Glacier Instant Retrieval": "GLACIER_IR",
                "Intelligent-Tiering Frequent Access": "INTELLIGENT_TIERING"}
# Only the request groups whose meaning the Price List documents plainly; retrieval and
# restore fees keep their shipped values (and their shipped source) until mapped here.
_AWS_REQUESTS = {"S3-API-Tier1": ("STANDARD", "write_1k"),
                 "S3-API-Tier2": ("STANDARD", "read_1k"),
                 "S3-API-SIA-Tier1": ("STANDARD_IA", "write_1k"),
                 "S3-API-SIA-Tier2": ("STANDARD_IA", "read_1k"),
                 "S3-API-ZIA-Tier1": ("ONEZONE_IA", "write_1k"),
                 "S3-API-ZIA-Tier2": ("ONEZONE_IA", "read_1k")}
_AZURE_TIERS = {"Hot": "HOT", "Cool": "COOL", "Cold": "COLD", "Archive": "ARCHIVE"}
_GCP_GROUPS = {"RegionalStorage": "STANDARD", "NearlineStorage": "NEARLINE",
               "ColdlineStorage": "COLDLINE", "ArchiveStorage": "ARCHIVE"}


@dataclass
class UpdateResult:
    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "prices-update", "path": str(self.path), "rows": self.rows,
                "skipped": self.skipped}


def http_json(url: str) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "cloudshift-prices-update"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise ConfigError(f"price API answered HTTP {exc.code} for "
                          f"{_public(url)}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"cannot reach the price API at {_public(url)}: {reason}",
                          hint="`prices update` needs the internet; the shipped prices "
                               "still work offline") from exc
    except ValueError as exc:
        raise ConfigError(f"price API at {_public(url)} returned something that is not "
                          "JSON") from exc


def _public(url: str) -> str:
    """The URL without its query string: the GCP one carries the API key."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _row(region: str, cls: str) -> dict[str, str]:
    return {"region": region, "storage_class": cls}


# --- AWS ----------------------------------------------------------------------------------------
def aws_rows(region: str, fetch: Fetch, base: str = AWS_URL) -> dict[str, dict[str, str]]:
    name = region.split(":", 1)[1]
    offer = fetch(f"{base}/offers/v1.0/aws/AmazonS3/current/{name}/index.json")
    products = offer.get("products", {})
    terms = offer.get("terms", {}).get("OnDemand", {})
    out: dict[str, dict[str, str]] = {}

    def first_price(sku: str) -> float | None:
        for term in terms.get(sku, {}).values():
            dims = sorted(term.get("priceDimensions", {}).values(),
                          key=lambda d: float(d.get("beginRange", 0) or 0))
            if dims:
                return float(dims[0]["pricePerUnit"]["USD"])
        return None

    for sku, prod in products.items():
        attrs = prod.get("attributes", {})
        family = prod.get("productFamily", "")
        target: tuple[str, str] | None = None
        scale = 1.0
        if family == "Storage" and attrs.get("volumeType") in _AWS_STORAGE:
            target = (_AWS_STORAGE[attrs["volumeType"]], "gb_month")
        elif family == "API Request" and attrs.get("group") in _AWS_REQUESTS:
            target, scale = _AWS_REQUESTS[attrs["group"]], 1000.0
        if target is None:
            continue
        price = first_price(sku)
        if price is None:
            continue
        out.setdefault(target[0], _row(region, target[0]))[target[1]] = f"{price * scale:g}"
    return out


# --- Azure --------------------------------------------------------------------------------------
def _per_unit(unit: str) -> float:
    """Azure's unitOfMeasure ('10K', '1 GB/Month', '1') -> how many units one price buys."""
    head = unit.split()[0].upper()
    if head.endswith("K"):
        return float(head[:-1] or 1) * 1000
    try:
        return float(head)
    except ValueError:
        return 1.0


def azure_rows(region: str, fetch: Fetch, base: str = AZURE_URL) -> dict[str, dict[str, str]]:
    name = region.split(":", 1)[1]
    flt = (f"serviceName eq 'Storage' and productName eq 'Blob Storage' and "
           f"armRegionName eq '{name}' and priceType eq 'Consumption'")
    url: str | None = (f"{base}/api/retail/prices?"
                       + urllib.parse.urlencode({"$filter": flt}))
    out: dict[str, dict[str, str]] = {}
    pages = 0
    while url and pages < MAX_PAGES:
        page = fetch(url)
        pages += 1
        for item in page.get("Items", []):
            if float(item.get("tierMinimumUnits", 0) or 0) != 0:
                continue
            meter = str(item.get("meterName", ""))
            tier_word = meter.split(" ", 1)[0]
            cls = _AZURE_TIERS.get(tier_word)
            if cls is None:
                continue
            price = float(item["retailPrice"]) / _per_unit(str(item.get("unitOfMeasure", "1")))
            fld: str | None = None
            if meter == f"{tier_word} LRS Data Stored":
                fld = "gb_month"
            elif meter == f"{tier_word} LRS Write Operations":
                fld = "write_1k"
            elif meter == f"{tier_word} Read Operations":
                fld = "restore_1k" if cls == "ARCHIVE" else "read_1k"
            elif meter == f"{tier_word} Data Retrieval":
                fld = "restore_gb" if cls == "ARCHIVE" else "retrieval_gb"
            if fld is None:
                continue
            scale = 1000.0 if fld.endswith("_1k") else 1.0
            out.setdefault(cls, _row(region, cls))[fld] = f"{price * scale:g}"
        url = page.get("NextPageLink")
    return out


# --- Google Cloud -------------------------------------------------------------------------------
def _money(unit_price: dict[str, Any]) -> float:
    return int(unit_price.get("units", 0) or 0) + int(unit_price.get("nanos", 0) or 0) / 1e9


def _count_unit(unit: str) -> float:
    """'count' -> 1, '10k count' -> 10000: how many operations one unit price buys."""
    head = unit.split()[0].lower() if unit.split() else "1"
    if head == "count":
        return 1.0
    mult = 1000.0 if head.endswith("k") else 1e6 if head.endswith("m") else 1.0
    try:
        return float(head.rstrip("km") or 1) * mult
    except ValueError:
        return 1.0


def gcp_rows(region: str, fetch: Fetch, api_key: str, base: str = GCP_URL
             ) -> dict[str, dict[str, str]]:
    name = region.split(":", 1)[1]
    out: dict[str, dict[str, str]] = {}
    token = ""
    for _ in range(MAX_PAGES):
        query = {"key": api_key, "currencyCode": "USD"}
        if token:
            query["pageToken"] = token
        page = fetch(f"{base}/v1/services/{GCS_SERVICE}/skus?" + urllib.parse.urlencode(query))
        for sku in page.get("skus", []):
            if name not in sku.get("serviceRegions", []):
                continue
            cat = sku.get("category", {})
            desc = str(sku.get("description", ""))
            info = (sku.get("pricingInfo") or [{}])[0].get("pricingExpression", {})
            rates = sorted(info.get("tieredRates", []),
                           key=lambda r: float(r.get("startUsageAmount", 0)))
            # Skip free tiers: the first non-zero rate is the list price.
            paid = [_money(r.get("unitPrice", {})) for r in rates]
            paid = [p for p in paid if p > 0] or paid
            if not paid:
                continue
            price = paid[0]
            unit = str(info.get("usageUnit", ""))
            cls = _GCP_GROUPS.get(str(cat.get("resourceGroup", "")))
            fld: str | None = None
            if cls and cat.get("resourceFamily") == "Storage" and unit.startswith("GiBy.mo"):
                fld = "gb_month"
            elif "Class A Operations" in desc or "Class B Operations" in desc:
                cls = next((c for k, c in (("Nearline", "NEARLINE"), ("Coldline", "COLDLINE"),
                                           ("Archive", "ARCHIVE")) if k in desc), "STANDARD")
                fld = "write_1k" if "Class A" in desc else "read_1k"
                price *= 1000.0 / _count_unit(unit)
            elif "Data Retrieval" in desc:
                cls = next((c for k, c in (("Nearline", "NEARLINE"), ("Coldline", "COLDLINE"),
                                           ("Archive", "ARCHIVE")) if k in desc), None)
                fld = "retrieval_gb"
            if cls is None or fld is None:
                continue
            out.setdefault(cls, _row(region, cls))[fld] = f"{price:g}"
        token = str(page.get("nextPageToken", "") or "")
        if not token:
            break
    return out


# --- the command --------------------------------------------------------------------------------
SOURCES = {"aws": ("aws-pricelist-api", "AWS Price List bulk API (AmazonS3 offer)", AWS_URL),
           "azure": ("azure-retail-api", "Azure Retail Prices API (Blob Storage)", AZURE_URL),
           "gcp": ("gcp-billing-catalog", "Google Cloud Billing Catalog API (Cloud Storage)",
                   GCP_URL)}


def update(regions: Iterable[str] = (), *, folder: Path | None = None,
           gcp_api_key: str | None = None, fetch: Fetch = http_json,
           endpoints: dict[str, str] | None = None, today: str | None = None) -> UpdateResult:
    """Fetch current list prices for ``regions`` (default: one per provider) and write them."""
    known = load_catalog().route_regions()
    wanted = [parse_region(r, known) for r in list(regions) or REFERENCE_REGION.values()]
    base = {"aws": AWS_URL, "azure": AZURE_URL, "gcp": GCP_URL, **(endpoints or {})}
    date = today or datetime.now(UTC).date().isoformat()
    result = UpdateResult((folder or user_prices_dir()) / UPDATED_FILE)
    fetched: list[dict[str, str]] = []
    for provider, code in wanted:
        region = f"{provider}:{code}" if code else provider
        if provider == "gcp" and not gcp_api_key:
            result.skipped.append(f"{region}: the Cloud Billing Catalog needs an API key "
                                  "(--gcp-api-key or CLOUDSHIFT_GCP_API_KEY)")
            continue
        if provider == "aws":
            rows = aws_rows(region, fetch, base["aws"])
        elif provider == "azure":
            rows = azure_rows(region, fetch, base["azure"])
        elif provider == "gcp":
            assert gcp_api_key is not None
            rows = gcp_rows(region, fetch, gcp_api_key, base["gcp"])
        else:
            raise UsageError(f"cannot update prices for {region}")
        if not rows:
            result.skipped.append(f"{region}: the API returned no storage prices we know")
        src_id, title, url = SOURCES[provider]
        for row in rows.values():
            row.update({"source": src_id, "source_title": title, "url": url, "as_of": date})
            fetched.append(row)
    result.rows = _merge_existing(result.path, fetched)
    _write(result.path, result.rows)
    return result


_COLUMNS = ["region", "storage_class", *STORAGE_FIELDS, "min_days", "source", "source_title",
            "url", "as_of"]


def _merge_existing(path: Path, new: list[dict[str, str]]) -> list[dict[str, str]]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows[(row["region"], row["storage_class"])] = row
    for row in new:
        rows[(row["region"], row["storage_class"])] = row
    return [rows[k] for k in sorted(rows)]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    hint = "set CLOUDSHIFT_HOME to a writable folder"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write updated prices to '{path}': {exc.strerror}",
                          hint=hint) from exc
    text = io.StringIO()
    w = csv.DictWriter(text, _COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, text.getvalue(), error=ConfigError, hint=hint)
