"""Price and throughput tables shipped with the package, with the source and date of each value.

Every number the planner uses comes out of a :class:`PriceBook` as a :class:`Price` that names
where it came from, so a plan can print "0.09 USD/GB (Amazon EC2 On-Demand pricing, 2026-11)"
next to every term. Users override any value with ``--prices FILE`` (enterprise discounts,
committed-use contracts); ``cloudshift prices update`` writes refreshed tables under
``$CLOUDSHIFT_HOME/prices/`` which win over the shipped ones.

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.core.paths import state_home

GB = 2**30
PROVIDERS = ("aws", "gcp", "azure")
# The provider each URI scheme lives on; file:// and mem:// run wherever cloudshift runs.
SCHEME_PROVIDER = {"s3": "aws", "gs": "gcp", "az": "azure", "file": "local", "mem": "local"}
DEFAULT_REGION = {"aws": "aws:us-east-1", "gcp": "gcp:us-central1", "azure": "azure:eastus"}
DEFAULT_CLASS = {"aws": "STANDARD", "gcp": "STANDARD", "azure": "HOT"}
STORAGE_FIELDS = ("gb_month", "write_1k", "read_1k", "retrieval_gb", "restore_gb",
                  "restore_1k", "restore_hours")
_UNITS = {"gb_month": "USD/GB-month", "write_1k": "USD/1,000 writes",
          "read_1k": "USD/1,000 reads", "retrieval_gb": "USD/GB retrieved",
          "restore_gb": "USD/GB restored", "restore_1k": "USD/1,000 restore requests",
          "restore_hours": "hours"}
# Aliases seen in listings: GCS legacy names, Azure's capitalised tiers.
_CLASS_ALIASES = {"REGIONAL": "STANDARD", "MULTI_REGIONAL": "STANDARD",
                  "DURABLE_REDUCED_AVAILABILITY": "STANDARD", "GLACIER_FLEXIBLE": "GLACIER"}


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    url: str
    as_of: str


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
class Region:
    provider: str  # aws | gcp | azure | local
    name: str      # us-east-1; "" for local

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}" if self.name else self.provider

    @property
    def local(self) -> bool:
        return self.provider == "local"


LOCAL = Region("local", "")


@dataclass(frozen=True, slots=True)
class Tier:
    from_gb: float
    to_gb: float | None
    price: Price


@dataclass(frozen=True, slots=True)
class StoragePrices:
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


def _read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _data(name: str) -> str:
    return resources.files("cloudshift.cost").joinpath("data", name).read_text("utf-8")


def user_prices_dir() -> Path:
    return state_home() / "prices"


@dataclass
class PriceBook:
    """All tables, loaded once. Lookups return :class:`Price` objects, never bare floats."""

    sources: dict[str, Source]
    throughput: dict[tuple[str, str], tuple[float, int]]
    egress: dict[tuple[str, str], float]
    egress_tiers: list[tuple[str, list[str], float, float | None, float, str]]
    storage: dict[tuple[str, str], dict[str, str]]
    vms: dict[tuple[str, str], float]
    vm_network: dict[tuple[str, str], float]
    limits_rows: dict[str, dict[str, str]]
    overrides: dict[str, float] = field(default_factory=dict)
    overrides_from: str = ""
    used: dict[str, Price] = field(default_factory=dict)

    # --- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, prices_file: str | Path | None = None, *, user_dir: Path | None = None
             ) -> PriceBook:
        sources = {r["id"]: Source(r["id"], r["title"], r["url"], r["as_of"])
                   for r in _read_csv(_data("sources.csv"))}
        throughput = {(r["src"], r["dst"]): (float(r["gbps"]), int(r["n"]))
                      for r in _read_csv(_data("throughput.csv"))}
        egress = {(r["src"], r["dst"]): float(r["usd_per_gb"])
                  for r in _read_csv(_data("egress.csv"))}
        tiers = [(r["provider"], r["src_regions"].split(), float(r["from_gb"]),
                  float(r["to_gb"]) if r["to_gb"] else None, float(r["usd_per_gb"]),
                  r["source"]) for r in _read_csv(_data("egress_tiers.csv"))]
        storage = {(r["region"], r["storage_class"]): r for r in _read_csv(_data("storage.csv"))}
        vms = {(r["region"], r["instance_type"]): float(r["usd_per_hour"])
               for r in _read_csv(_data("vms.csv"))}
        net = {(r["provider"], r["instance_type"]): float(r["network_gbps"])
               for r in _read_csv(_data("vm_network.csv"))}
        limits = {r["provider"]: r for r in _read_csv(_data("limits.csv"))}
        book = cls(sources, throughput, egress, tiers, storage, vms, net, limits)
        book._merge_user_tables(user_dir or user_prices_dir())
        if prices_file is not None:
            book.overrides = load_overrides(Path(prices_file))
            book.overrides_from = str(prices_file)
        return book

    def _merge_user_tables(self, folder: Path) -> None:
        """Tables written by ``cloudshift prices update`` replace the shipped rows they cover."""
        path = folder / "storage.csv"
        if not path.is_file():
            return
        try:
            rows = _read_csv(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"cannot read updated prices '{path}': {exc}",
                              hint="delete it to fall back to the shipped prices") from exc
        for row in rows:
            src_id = row.get("source", "")
            if src_id not in self.sources:
                self.sources[src_id] = Source(src_id, row.get("source_title") or src_id,
                                              row.get("url", ""), row.get("as_of", "?"))
            key = (row["region"], row["storage_class"])
            merged = dict(self.storage.get(key) or self.storage.get(
                (row["region"].split(":")[0] + ":*", row["storage_class"])) or {})
            if not merged:
                merged = {"source": src_id, "min_days": "0", **dict.fromkeys(STORAGE_FIELDS,
                                                                              "0")}
            merged["region"] = row["region"]
            merged["storage_class"] = row["storage_class"]
            # Each field keeps its own source: an update may refresh only some of them.
            for f in STORAGE_FIELDS:
                if row.get(f) not in (None, ""):
                    merged[f] = row[f]
                    merged[f"source:{f}"] = src_id
            self.storage[key] = merged

    # --- provenance helpers -------------------------------------------------------------------
    def _price(self, key: str, value: float, unit: str, source_id: str, note: str = ""
               ) -> Price:
        ov = self._override(key)
        if ov is not None:
            price = Price(key, ov, unit, f"override from {self.overrides_from}", "", "user",
                          note=f"was {value:g} ({self._cite_source(source_id)})")
        else:
            src = self.sources.get(source_id)
            price = Price(key, value, unit, src.title if src else source_id,
                          src.url if src else "", src.as_of if src else "?", note)
        self.used[key] = price
        return price

    def _cite_source(self, source_id: str) -> str:
        src = self.sources.get(source_id)
        return f"{src.title}, {src.as_of}" if src else source_id

    def _override(self, key: str) -> float | None:
        if key in self.overrides:
            return self.overrides[key]
        for pattern, value in self.overrides.items():
            if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
                return value
        return None

    # --- regions ------------------------------------------------------------------------------
    def known_regions(self) -> set[str]:
        names: set[str] = set()
        for s, d in self.throughput:
            names.update((s, d))
        for s, d in self.egress:
            names.update((s, d))
        names.update(r for r, _ in self.vms)
        return names

    def region(self, text: str) -> Region:
        """Parse ``provider:region``; unknown names fail with the closest known ones."""
        raw = text.strip()
        provider, sep, name = raw.partition(":")
        provider = provider.lower()
        if provider == "local" and not name:
            return LOCAL
        if not sep or provider not in PROVIDERS:
            raise UsageError(f"unknown provider in region '{text}'",
                             hint="write provider:region, provider one of aws, gcp, azure, "
                                  "e.g. aws:us-east-1, gcp:us-central1, azure:eastus")
        full = f"{provider}:{name.lower()}"
        known = self.known_regions()
        if full not in known:
            close = difflib.get_close_matches(full, sorted(known), n=4, cutoff=0.6)
            hint = ("did you mean " + ", ".join(close)) if close else (
                f"known {provider} regions: " + ", ".join(sorted(
                    r for r in known if r.startswith(provider + ":"))[:12]) + ", ...")
            raise UsageError(f"unknown region '{text}'", hint=hint)
        return Region(provider, name.lower())

    def regions_of(self, provider: str) -> list[Region]:
        return [Region(*r.split(":", 1)) for r in sorted(self.known_regions())
                if r.startswith(provider + ":")]

    # --- throughput ---------------------------------------------------------------------------
    def throughput_gbps(self, src: Region, dst: Region) -> tuple[Price, str | None]:
        """Median measured Gbit/s between one VM per side; a stated default when unmeasured."""
        key = f"throughput/{src}/{dst}"
        if src == dst:
            # Same-region copies were not measured; in-region links are not the bottleneck, the
            # VM's network is. Use the provider's per-VM cap as the stated default.
            cap = self.limits(src.provider).vm_egress_gbps.value
            return self._price(key, cap, "Gbit/s per VM pair", "skyplane-paper",
                               "same region: per-VM cap used"), None
        hit = self.throughput.get((str(src), str(dst)))
        if hit is not None:
            gbps, n = hit
            return self._price(key, gbps, "Gbit/s per VM pair", "skyplane-throughput",
                               f"median of {n} measurement{'s' if n != 1 else ''}"), None
        same = [g for (s, d), (g, _) in self.throughput.items()
                if s.startswith(src.provider + ":") and d.startswith(dst.provider + ":")]
        default = round(statistics.median(same), 3) if same else 1.0
        warn = (f"no throughput measurement for {src} -> {dst}; assumed {default} Gbit/s per VM "
                f"pair (median of measured {src.provider} -> {dst.provider} pairs)")
        return self._price(key, default, "Gbit/s per VM pair", "skyplane-throughput",
                           "DEFAULT: pair not measured"), warn

    def measured(self, src: Region, dst: Region) -> float | None:
        hit = self.throughput.get((str(src), str(dst)))
        return hit[0] if hit else None

    # --- egress -------------------------------------------------------------------------------
    def egress_tiers_for(self, src: Region, dst: Region) -> tuple[list[Tier], str | None]:
        """Volume tiers (GB ranges with USD/GB) for data leaving ``src`` towards ``dst``."""
        key = f"egress/{src}/{dst}"
        if src.local:
            # Uploads from a user's own machine: ingress is free on all three providers.
            page = {"aws": "aws-ec2-dto", "gcp": "gcp-network", "azure": "azure-bandwidth"}
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", page.get(dst.provider, ""),
                                              "ingress is free"))], None
        if src == dst:
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", "skyplane-cost",
                                              "same region"))], None
        if self._override(key) is not None:
            return [Tier(0, None, self._price(key, 0.0, "USD/GB", "skyplane-cost"))], None
        internet = dst.local or dst.provider != src.provider
        if internet:
            schedule = [t for t in self.egress_tiers if t[0] == src.provider
                        and any(fnmatch.fnmatchcase(src.name, p) for p in t[1])]
            if schedule:
                return [Tier(f, t, self._price(f"{key}#{int(f)}", p, "USD/GB", s,
                                               f"volume tier from {f:g} GB"))
                        for _, _, f, t, p, s in sorted(schedule, key=lambda x: x[2])], None
        flat = self.egress.get((str(src), str(dst)))
        if flat is None and internet:
            others = [c for (s, d), c in self.egress.items()
                      if s == str(src) and not d.startswith(src.provider + ":")]
            flat = max(others) if others else None
        if flat is None:
            same = [c for (s, d), c in self.egress.items()
                    if s == str(src) and d.startswith(dst.provider + ":") and d != s]
            flat = statistics.median(same) if same else 0.12
            warn = f"no egress price for {src} -> {dst}; assumed {flat:g} USD/GB"
            return [Tier(0, None, self._price(key, flat, "USD/GB", "skyplane-cost",
                                              "DEFAULT: pair not priced"))], warn
        note = "flat rate; no volume tiers shipped for this source region" if internet else \
            "inter-region rate (not tiered)"
        return [Tier(0, None, self._price(key, flat, "USD/GB", "skyplane-cost", note))], None

    # --- storage ------------------------------------------------------------------------------
    def normalize_class(self, provider: str, storage_class: str | None) -> str:
        if provider == "local":
            return "LOCAL"
        if not storage_class:
            return DEFAULT_CLASS[provider]
        name = storage_class.upper().replace(" ", "_").replace("-", "_")
        return _CLASS_ALIASES.get(name, name)

    def storage_classes(self, provider: str) -> list[str]:
        return sorted({c for (r, c) in self.storage if r.startswith(provider + ":")})

    def storage_prices(self, region: Region, storage_class: str) -> tuple[StoragePrices,
                                                                          str | None]:
        warn = None
        cls = storage_class
        row = self.storage.get((str(region), cls)) or self.storage.get(
            (f"{region.provider}:*", cls))
        if row is None:
            fallback = DEFAULT_CLASS[region.provider]
            warn = (f"no prices for storage class {cls} on {region.provider}; "
                    f"used {fallback} prices")
            cls = fallback
            row = self.storage.get((str(region), cls)) or self.storage[
                (f"{region.provider}:*", cls)]
        note = ""
        if row["region"].endswith(":*") and str(region) != DEFAULT_REGION[region.provider]:
            note = (f"{DEFAULT_REGION[region.provider]} list price; no price shipped for "
                    f"{region}")
        values = {f: self._price(f"storage/{region}/{cls}/{f}", float(row[f]),
                                 _UNITS[f], row.get(f"source:{f}", row["source"]),
                                 "" if f"source:{f}" in row else note)
                  for f in STORAGE_FIELDS}
        return StoragePrices(region, cls, min_days=int(row.get("min_days") or 0),
                             **values), warn

    # --- machines and limits ------------------------------------------------------------------
    def limits(self, provider: str) -> Limits:
        row = self.limits_rows[provider]
        src = row["source"]
        return Limits(provider,
                      self._price(f"limit/{provider}/write_rps", float(row["write_rps"]),
                                  "requests/s", src),
                      self._price(f"limit/{provider}/read_rps", float(row["read_rps"]),
                                  "requests/s", src),
                      self._price(f"limit/{provider}/vm_egress_gbps",
                                  float(row["vm_egress_gbps"]), "Gbit/s", "skyplane-paper"),
                      row["default_worker"])

    def worker_types(self, provider: str) -> list[str]:
        return sorted({t for (r, t) in self.vms if r.startswith(provider + ":")})

    def check_worker_type(self, provider: str, worker_type: str) -> None:
        types = self.worker_types(provider)
        if worker_type not in types:
            close = difflib.get_close_matches(worker_type, types, n=4, cutoff=0.5)
            raise UsageError(f"unknown {provider} worker type '{worker_type}'",
                             hint=("did you mean " + ", ".join(close)) if close else
                             f"priced types include {', '.join(types[:8])}, ...")

    def vm_price(self, region: Region, worker_type: str) -> tuple[Price, str | None]:
        key = f"vm/{region}/{worker_type}"
        value = self.vms.get((str(region), worker_type))
        if value is not None:
            return self._price(key, value, "USD/hour", "skypilot-vms", "on-demand"), None
        elsewhere = sorted((v, r) for (r, t), v in self.vms.items()
                           if t == worker_type and r.startswith(region.provider + ":"))
        if not elsewhere:
            raise UsageError(f"no price for worker type '{worker_type}' on {region.provider}",
                             hint="choose another --worker-type or give one in --prices")
        value, where = elsewhere[len(elsewhere) // 2]
        warn = (f"no VM price for {worker_type} in {region}; used its {where} price "
                f"({value:g} USD/hour)")
        return self._price(key, value, "USD/hour", "skypilot-vms",
                           f"price of {where}: region not in catalog"), warn

    def vm_network_gbps(self, provider: str, worker_type: str) -> float | None:
        return self.vm_network.get((provider, worker_type))


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


def dedupe(prices: Iterable[Price]) -> list[Price]:
    seen: dict[str, Price] = {}
    for p in prices:
        seen.setdefault(p.key, p)
    return sorted(seen.values(), key=lambda p: p.key)


def with_note(price: Price, note: str) -> Price:
    return replace(price, note=f"{price.note}; {note}" if price.note else note)
