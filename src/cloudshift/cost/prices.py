"""The planner's prices: catalogue figures as citable, overridable :class:`Price` objects.

Every number the planner uses comes out of a :class:`PriceBook` as a :class:`Price` that names
where it came from, so a plan can print "0.09 USD/GB (Amazon EC2 On-Demand pricing, 2026-11)"
next to every term. The figures are the one catalogue's (:mod:`cloudshift.catalog`, which the
assessment reads too, including what ``cloudshift prices update`` refreshed); users override
any value for one plan with ``--prices FILE`` (enterprise discounts, committed-use contracts).

Units: money in USD, data in GB where 1 GB = 2**30 bytes (the providers bill binary
gigabytes), throughput in Gbit/s (10**9 bits per second).
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import json
import statistics
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cloudshift.catalog.load import Catalog, load_catalog
from cloudshift.catalog.records import STORAGE_FIELDS
from cloudshift.catalog.regions import LOCAL, REFERENCE_REGION, Region, parse_region
from cloudshift.catalog.sources import Source
from cloudshift.core.errors import ConfigError, UsageError

GB = 2**30
# The provider each URI scheme lives on; file:// and mem:// run wherever cloudshift runs.
SCHEME_PROVIDER = {"s3": "aws", "gs": "gcp", "az": "azure", "file": "local", "mem": "local"}
# Assumed when a region is not given: the region whose list prices the catalogue ships.
DEFAULT_REGION = REFERENCE_REGION
DEFAULT_CLASS = {"aws": "STANDARD", "gcp": "STANDARD", "azure": "HOT"}
_UNITS = {"gb_month": "USD/GB-month", "write_1k": "USD/1,000 writes",
          "read_1k": "USD/1,000 reads", "retrieval_gb": "USD/GB retrieved",
          "restore_gb": "USD/GB restored", "restore_1k": "USD/1,000 restore requests",
          "restore_hours": "hours"}
# Aliases seen in listings: GCS legacy names, Azure's capitalised tiers.
_CLASS_ALIASES = {"REGIONAL": "STANDARD", "MULTI_REGIONAL": "STANDARD",
                  "DURABLE_REDUCED_AVAILABILITY": "STANDARD", "GLACIER_FLEXIBLE": "GLACIER"}
# Ingress from a user's own machine is free; the page that says so, per provider.
_INGRESS_PAGE = {"aws": "aws-ec2-dto", "gcp": "gcp-network", "azure": "azure-bandwidth"}


@dataclass(frozen=True, slots=True)
class Price:
    """One number with its provenance. ``key`` is what ``--prices FILE`` overrides."""

    key: str
    value: float
    unit: str
    source: str
    url: str
    as_of: str
    note: str = ""

    def cite(self) -> str:
        extra = f"; {self.note}" if self.note else ""
        return f"{self.source}, {self.as_of}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "unit": self.unit, "source": self.source,
                "url": self.url, "as_of": self.as_of, "note": self.note}


@dataclass(frozen=True, slots=True)
class Tier:
    from_gb: float
    to_gb: float | None
    price: Price


@dataclass(frozen=True, slots=True)
class StoragePrices:
    """The prices of one storage class in one region, as a plan uses and cites them."""

    region: Region
    storage_class: str
    gb_month: Price
    write_1k: Price
    read_1k: Price
    retrieval_gb: Price
    restore_gb: Price
    restore_1k: Price
    restore_hours: Price
    min_days: int

    @property
    def needs_restore(self) -> bool:
        return self.restore_hours.value > 0


@dataclass(frozen=True, slots=True)
class Limits:
    provider: str
    write_rps: Price
    read_rps: Price
    vm_egress_gbps: Price
    default_worker: str


@dataclass
class PriceBook:
    """The catalogue as the planner asks it. Lookups return :class:`Price` objects, never
    bare floats, with ``--prices`` overrides applied; ``used`` collects every one handed out."""

    catalog: Catalog
    overrides: dict[str, float] = field(default_factory=dict)
    overrides_from: str = ""
    used: dict[str, Price] = field(default_factory=dict)

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, prices_file: str | Path | None = None, *, user_dir: Path | None = None
             ) -> PriceBook:
        book = cls(load_catalog(user_dir=user_dir))
        if prices_file is not None:
            book.overrides = load_overrides(Path(prices_file))
            book.overrides_from = str(prices_file)
        return book

    @property
    def sources(self) -> Mapping[str, Source]:
        return self.catalog.sources

    # --- provenance helpers -------------------------------------------------------------------
    def _source(self, source_id: str) -> Source:
        return self.catalog.sources.get(source_id) or Source(source_id, source_id, "", "?")

    def _price(self, key: str, value: float, unit: str, source: Source, note: str = ""
               ) -> Price:
        ov = self._override(key)
        if ov is not None:
            price = Price(key, ov, unit, f"override from {self.overrides_from}", "", "user",
                          note=f"was {value:g} ({source.cite()})")
        else:
            price = Price(key, value, unit, source.title, source.url, source.as_of, note)
        self.used[key] = price
        return price

    def _override(self, key: str) -> float | None:
        if key in self.overrides:
            return self.overrides[key]
        for pattern, value in self.overrides.items():
            if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
                return value
        return None

    # --- regions ------------------------------------------------------------------------------
    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(self.catalog.route_regions())

    def known_regions(self) -> frozenset[str]:
        """Regions a plan can price: measured, priced for egress or for VMs."""
        return self._known

    def region(self, text: str) -> Region:
        """Parse ``provider:region``; unknown names fail with the closest known ones."""
        provider, code = parse_region(text, self._known)
        return LOCAL if provider == "local" else self.catalog.region(f"{provider}:{code}")

    # --- throughput ---------------------------------------------------------------------------
    def throughput_gbps(self, src: Region, dst: Region) -> tuple[Price, str | None]:
        """Median measured Gbit/s between one VM per side; a stated default when unmeasured."""
        key = f"throughput/{src}/{dst}"
        if src == dst:
            # Same-region copies were not measured; in-region links are not the bottleneck, the
            # VM's network is. Use the provider's per-VM cap as the stated default.
            cap = self.catalog.limits[src.provider].vm_egress_gbps
            return self._price(key, cap.value, "Gbit/s per VM pair", cap.source,
                               "same region: per-VM cap used"), None
        hit = self.catalog.throughput.get((str(src), str(dst)))
        if hit is not None:
            return self._price(key, hit.gbps, "Gbit/s per VM pair", hit.source,
                               f"median of {hit.n} measurement{'s' if hit.n != 1 else ''}"
                               ), None
        same = [t.gbps for (s, d), t in self.catalog.throughput.items()
                if s.startswith(src.provider + ":") and d.startswith(dst.provider + ":")]
        default = round(statistics.median(same), 3) if same else 1.0
        warn = (f"no throughput measurement for {src} -> {dst}; assumed {default} Gbit/s per VM "
                f"pair (median of measured {src.provider} -> {dst.provider} pairs)")
        return self._price(key, default, "Gbit/s per VM pair",
                           self._source("skyplane-throughput"), "DEFAULT: pair not measured"
                           ), warn

    def measured(self, src: Region, dst: Region) -> float | None:
        hit = self.catalog.throughput.get((str(src), str(dst)))
        return hit.gbps if hit else None

    # --- egress -------------------------------------------------------------------------------
    def egress_tiers_for(self, src: Region, dst: Region) -> tuple[list[Tier], str | None]:
        """Volume tiers (GB ranges with USD/GB) for data leaving ``src`` towards ``dst``."""
        key = f"egress/{src}/{dst}"
        pairs = self.catalog.egress
        if src.local:
            # Uploads from a user's own machine: ingress is free on all three providers.
            page = self._source(_INGRESS_PAGE.get(dst.provider, ""))
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", page, "ingress is free"))], None
        grid = self._source("skyplane-cost")
        if src == dst:
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", grid, "same region"))], None
        if self._override(key) is not None:
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", grid))], None
        internet = dst.local or dst.provider != src.provider
        if internet:
            schedule = [t for t in self.catalog.egress_tiers if t.provider == src.provider
                        and any(fnmatch.fnmatchcase(src.code, p) for p in t.src_regions)]
            if schedule:
                return [Tier(t.from_gb, t.to_gb,
                             self._price(f"{key}#{int(t.from_gb)}", t.usd_per_gb, "USD/GB",
                                         t.source, f"volume tier from {t.from_gb:g} GB"))
                        for t in sorted(schedule, key=lambda t: t.from_gb)], None
        hit = pairs.get((str(src), str(dst)))
        flat = hit.value if hit is not None else None
        if flat is None and internet:
            others = [c.value for (s, d), c in pairs.items()
                      if s == str(src) and not d.startswith(src.provider + ":")]
            flat = max(others) if others else None
        if flat is None:
            same = [c.value for (s, d), c in pairs.items()
                    if s == str(src) and d.startswith(dst.provider + ":") and d != s]
            flat = statistics.median(same) if same else 0.12
            warn = f"no egress price for {src} -> {dst}; assumed {flat:g} USD/GB"
            return [Tier(0, None, self._price(key, flat, "USD/GB", grid,
                                              "DEFAULT: pair not priced"))], warn
        note = "flat rate; no volume tiers shipped for this source region" if internet else \
            "inter-region rate (not tiered)"
        return [Tier(0, None, self._price(key, flat, "USD/GB", grid, note))], None

    # --- storage ------------------------------------------------------------------------------
    def normalize_class(self, provider: str, storage_class: str | None) -> str:
        if provider == "local":
            return "LOCAL"
        if not storage_class:
            return DEFAULT_CLASS[provider]
        name = storage_class.upper().replace(" ", "_").replace("-", "_")
        return _CLASS_ALIASES.get(name, name)

    def storage_classes(self, provider: str) -> list[str]:
        return sorted({c for (r, c) in self.catalog.storage if r.startswith(provider + ":")})

    def storage_prices(self, region: Region, storage_class: str) -> tuple[StoragePrices,
                                                                          str | None]:
        """The class's prices in ``region``, else its reference region's (said in a note)."""
        warn = None
        cls = storage_class
        ref = REFERENCE_REGION[region.provider]
        table = self.catalog.storage
        rates = table.get((str(region), cls)) or table.get((ref, cls))
        if rates is None:
            fallback = DEFAULT_CLASS[region.provider]
            warn = (f"no prices for storage class {cls} on {region.provider}; "
                    f"used {fallback} prices")
            cls = fallback
            rates = table.get((str(region), cls)) or table[(ref, cls)]
        note = (f"{ref} list price; no price shipped for {region}"
                if rates.region != str(region) else "")
        values = {f: self._price(f"storage/{region}/{cls}/{f}", rates.rate(f).value, _UNITS[f],
                                 rates.rate(f).source, note or rates.rate(f).note)
                  for f in STORAGE_FIELDS}
        return StoragePrices(region, cls, min_days=rates.min_days, **values), warn

    # --- machines and limits ------------------------------------------------------------------
    def limits(self, provider: str) -> Limits:
        row = self.catalog.limits[provider]
        return Limits(provider,
                      self._price(f"limit/{provider}/write_rps", row.write_rps.value,
                                  "requests/s", row.write_rps.source),
                      self._price(f"limit/{provider}/read_rps", row.read_rps.value,
                                  "requests/s", row.read_rps.source),
                      self._price(f"limit/{provider}/vm_egress_gbps", row.vm_egress_gbps.value,
                                  "Gbit/s", row.vm_egress_gbps.source),
                      row.default_worker)

    def _worker_prices(self, provider: str) -> Iterator[tuple[str, str, float, Source]]:
        """(region key, type, USD/hour, source) of every CPU-only type: copy workers need
        network and CPU, not accelerators."""
        for key, types in self.catalog.instances.items():
            if key.startswith(provider + ":"):
                for t in types:
                    if not t.gpu:
                        yield key, t.name, t.price_hour, t.source

    def worker_types(self, provider: str) -> list[str]:
        return sorted({name for _, name, _, _ in self._worker_prices(provider)})

    def check_worker_type(self, provider: str, worker_type: str) -> None:
        types = self.worker_types(provider)
        if worker_type not in types:
            close = difflib.get_close_matches(worker_type, types, n=4, cutoff=0.5)
            raise UsageError(f"unknown {provider} worker type '{worker_type}'",
                             hint=("did you mean " + ", ".join(close)) if close else
                             f"priced types include {', '.join(types[:8])}, ...")

    def vm_price(self, region: Region, worker_type: str) -> tuple[Price, str | None]:
        key = f"vm/{region}/{worker_type}"
        inst = self.catalog.instance(str(region), worker_type)
        if inst is not None and not inst.gpu:
            return self._price(key, inst.price_hour, "USD/hour", inst.source, "on-demand"), None
        elsewhere = sorted(((v, r, src) for r, t, v, src in self._worker_prices(region.provider)
                            if t == worker_type), key=lambda hit: (hit[0], hit[1]))
        if not elsewhere:
            raise UsageError(f"no price for worker type '{worker_type}' on {region.provider}",
                             hint="choose another --worker-type or give one in --prices")
        value, where, source = elsewhere[len(elsewhere) // 2]
        warn = (f"no VM price for {worker_type} in {region}; used its {where} price "
                f"({value:g} USD/hour)")
        return self._price(key, value, "USD/hour", source,
                           f"price of {where}: region not in catalog"), warn

    def vm_network_gbps(self, provider: str, worker_type: str) -> float | None:
        hit = self.catalog.vm_network.get((provider, worker_type))
        return hit.value if hit else None


# --- user overrides --------------------------------------------------------------------------
_KINDS = ("throughput", "egress", "storage", "vm", "limit")


def load_overrides(path: Path) -> dict[str, float]:
    """Read ``--prices FILE`` (TOML, JSON or CSV ``key,value``) into ``{key: value}``."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read prices file '{path}': {reason}",
                          hint="give a readable TOML, JSON or CSV file of key = value") from exc
    try:
        raw: Mapping[str, Any]
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        elif path.suffix.lower() == ".csv":
            raw = {r[0].strip(): r[1].strip() for r in csv.reader(io.StringIO(text))
                   if r and r[0].strip() and not r[0].startswith("#") and r[0] != "key"}
        else:
            doc = tomllib.loads(text)
            raw = doc.get("prices", doc)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, csv.Error, IndexError) as exc:
        raise ConfigError(f"prices file '{path}' is not valid: {str(exc).splitlines()[0]}",
                          hint="see docs/planning.md for the format") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"prices file '{path}' must hold a table of key = value")
    out: dict[str, float] = {}
    for key, value in _flatten(raw):
        kind = key.split("/", 1)[0]
        if kind not in _KINDS or key.count("/") < 2:
            raise ConfigError(f"prices file '{path}': unknown key '{key}'",
                              hint="keys look like egress/aws:us-east-1/gcp:us-central1 or "
                                   "storage/gcp:*/STANDARD/write_1k; see docs/planning.md")
        if kind == "storage" and key.rsplit("/", 1)[1] not in STORAGE_FIELDS:
            raise ConfigError(f"prices file '{path}': unknown storage field in '{key}'",
                              hint="one of " + ", ".join(STORAGE_FIELDS))
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"prices file '{path}': '{key}' = {value!r} is not a number"
                              ) from exc
        if number < 0:
            raise ConfigError(f"prices file '{path}': '{key}' is negative")
        out[key] = number
    return out


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in raw.items():
        full = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, full)
        else:
            yield full, value
