"""The price, SLA, compliance and region data the assessment reads.

Every table ships in ``cloudshift/assess/data`` (see ``data/SOURCES.md`` for where each figure
comes from and when it was recorded) and is read through :mod:`importlib.resources`, so it works
from a wheel or a zip as well as from a checkout. A user replaces any table with a file of the
same name and columns (``--data FILE`` or ``--data DIR``); the report names what was replaced.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cloudshift.core.errors import ConfigError, UsageError

PROVIDERS = ("aws", "gcp", "azure")
PROVIDER_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}

# Each table and the columns it must have; extra columns are allowed and ignored.
TABLES: dict[str, tuple[str, ...]] = {
    "vms.csv": ("cloud", "instance_type", "vcpus", "memory_gib", "accelerator",
                "accelerator_count", "arch", "region", "price_hour_usd", "spot_price_hour_usd"),
    "gcp_accelerators.csv": ("cloud", "accelerator", "accelerator_count", "region",
                             "price_hour_usd", "spot_price_hour_usd"),
    "regions.csv": ("provider", "region", "location", "country", "continent", "zones"),
    "storage.csv": ("provider", "region", "class", "product", "gb_month", "writes_per_1k",
                    "reads_per_1k", "retrieval_per_gb"),
    "network.csv": ("provider", "region", "internet_egress_per_gb", "inter_region_per_gb",
                    "free_internet_gb"),
    "databases.csv": ("provider", "engine", "product", "vcpu_hour", "gib_hour",
                      "storage_gb_month", "ha_multiplier", "reference_region", "reference_vm"),
    "slas.csv": ("provider", "service", "condition", "sla_percent", "product"),
    "compliance.csv": ("provider", "regime", "scope", "note"),
    "commitments.csv": ("provider", "pricing", "discount", "basis"),
    "families.csv": ("provider", "family", "processor", "year", "burstable"),
}

# What each table holds and where its figures come from (details in data/SOURCES.md).
TABLE_SOURCES: dict[str, str] = {
    "vms.csv": "instance prices (USD/h, on-demand and spot): SkyPilot price catalogue snapshot "
               "(github.com/skypilot-org/skypilot-catalog, v8 AWS/GCP, v6 Azure), retrieved "
               "2026-11-29; AWS 6 regions, GCP 7, Azure eastus and westus2 only",
    "gcp_accelerators.csv": "GCP GPU prices per accelerator, same catalogue and date",
    "regions.csv": "region locations and availability-zone counts from the providers' "
                   "region pages, recorded 2026-11-29",
    "storage.csv": "object storage list prices (first tier) from the S3, Cloud Storage and "
                   "Blob Storage pricing pages, recorded 2026-11-29",
    "network.csv": "internet and inter-region egress list prices (first tier), providers' "
                   "pricing pages, recorded 2026-11-29",
    "databases.csv": "managed PostgreSQL/MySQL list prices (RDS, Cloud SQL, Azure Database "
                     "Flexible Server), recorded 2026-11-29",
    "slas.csv": "published SLAs (EC2, Compute Engine, Azure VMs, object storage, managed "
                "databases), recorded 2026-11-29",
    "compliance.csv": "certifications and attestations from the providers' compliance pages, "
                      "recorded 2026-11-29",
    "commitments.csv": "1- and 3-year commitment discounts (GCP published; AWS and Azure "
                       "typical values, stated as assumptions), recorded 2026-11-29",
    "families.csv": "processor and launch year of each instance family, providers' "
                    "instance-type pages",
}

# Canonical compliance regime names; user spellings are matched after squeezing out
# everything but letters and digits ("PCI-DSS", "pci dss" and "PCIDSS" are one regime).
REGIMES = ("HIPAA", "PCI DSS", "GDPR", "ISO 27001", "SOC 2", "FedRAMP")

EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})
EEA_COUNTRIES = EU_COUNTRIES | {"IS", "LI", "NO"}


def squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass(frozen=True)
class InstanceType:
    provider: str
    name: str
    vcpus: float
    memory_gib: float
    gpu: str  # "" when the type has no accelerator
    gpu_count: int
    arch: str
    region: str
    price_hour: float
    spot_hour: float | None


@dataclass(frozen=True)
class Region:
    provider: str
    name: str
    location: str
    country: str
    continent: str
    zones: int

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.name}"


@dataclass(frozen=True)
class StoragePrice:
    product: str
    gb_month: float
    writes_per_1k: float
    reads_per_1k: float
    retrieval_per_gb: float


@dataclass(frozen=True)
class NetworkPrice:
    internet_egress_per_gb: float
    inter_region_per_gb: float
    free_internet_gb: float


@dataclass(frozen=True)
class DatabasePrice:
    product: str
    vcpu_hour: float
    gib_hour: float
    storage_gb_month: float
    ha_multiplier: float
    reference_region: str
    reference_vm: str
    note: str


@dataclass(frozen=True)
class Sla:
    percent: float | None  # None: the provider publishes no availability SLA for it
    product: str


@dataclass(frozen=True)
class Certification:
    regime: str
    scope: str  # "all", "country:US", "continent:europe"
    note: str

    def covers(self, region: Region) -> bool:
        if self.scope == "all":
            return True
        kind, _, value = self.scope.partition(":")
        if kind == "country":
            return region.country in {v.strip().upper() for v in value.split("|")}
        if kind == "continent":
            return region.continent == value.strip().lower()
        if kind == "region":
            return region.name in {v.strip() for v in value.split("|")}
        return False


@dataclass(frozen=True)
class Family:
    processor: str
    year: int
    burstable: bool


@dataclass
class Catalog:
    """All tables, indexed for the questions the assessment asks."""

    instances: dict[tuple[str, str], list[InstanceType]]  # (provider, region) -> types
    gcp_gpus: dict[tuple[str, str, int], float]  # (region, gpu, count) -> $/h
    regions: dict[tuple[str, str], Region]
    storage: dict[tuple[str, str, str], StoragePrice]  # (provider, region, class)
    network: dict[tuple[str, str], NetworkPrice]
    databases: dict[tuple[str, str], DatabasePrice]  # (provider, engine)
    slas: dict[tuple[str, str, str], Sla]  # (provider, service, condition)
    compliance: dict[str, list[Certification]]  # provider -> certifications
    commitments: dict[tuple[str, str], float]  # (provider, pricing) -> discount
    commitment_basis: dict[tuple[str, str], str]
    families: dict[tuple[str, str], Family]
    overridden: dict[str, str] = field(default_factory=dict)  # table -> file it came from

    def region(self, provider: str, name: str) -> Region | None:
        return self.regions.get((provider, name))

    def priced_regions(self, provider: str) -> list[str]:
        return sorted(r for (p, r) in self.instances if p == provider)

    def all_region_keys(self) -> list[str]:
        return sorted({f"{p}:{r}" for (p, r) in self.regions} |
                      {f"{p}:{r}" for (p, r) in self.instances})


def family_of(provider: str, instance_type: str) -> str:
    """The family key used in families.csv (``m6i``, ``n2d``, ``D_v5``, ``NC_T4_v3``...)."""
    if provider == "aws":
        return instance_type.split(".", 1)[0]
    if provider == "gcp":
        if re.fullmatch(r"e2-(micro|small|medium)", instance_type):
            return "e2-shared"
        return instance_type.split("-", 1)[0]
    m = re.fullmatch(r"Standard_([A-Z]+)\d+(?:-\d+)?[a-z]*(_[A-Z0-9]+)?(_v\d+)?", instance_type)
    if m is None:
        return instance_type
    return m.group(1) + (m.group(2) or "") + (m.group(3) or "")


def _num(row: Mapping[str, str], col: str, where: str) -> float:
    try:
        return float(row[col])
    except ValueError:
        raise ConfigError(f"{where}: column '{col}' holds '{row[col]}', not a number",
                          hint="fix the data file or drop the override") from None


def _opt_num(row: Mapping[str, str], col: str, where: str) -> float | None:
    return None if not row[col].strip() else _num(row, col, where)


def _read_table(name: str, override: Path | None) -> list[dict[str, str]]:
    if override is not None:
        try:
            text = override.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read data override {override}: {exc.strerror}") from None
        origin = str(override)
    else:
        text = (resources.files("cloudshift.assess") / "data" / name).read_text(encoding="utf-8")
        origin = f"packaged {name}"
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in TABLES[name] if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{origin}: missing column(s) {', '.join(missing)}",
                          hint=f"{name} needs the columns {','.join(TABLES[name])}")
    return [dict(r) for r in reader]


def resolve_overrides(paths: Iterable[str]) -> dict[str, Path]:
    """Map ``--data`` arguments (files or folders) to the tables they replace."""
    out: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = [p for p in sorted(path.iterdir()) if p.name in TABLES]
            if not found:
                raise UsageError(f"--data {raw}: the folder holds none of the data files",
                                 hint="name files like the packaged ones: " + ", ".join(TABLES))
            out.update({p.name: p for p in found})
        elif path.is_file():
            if path.name not in TABLES:
                raise UsageError(f"--data {raw}: '{path.name}' is not a data file name",
                                 hint="use one of " + ", ".join(TABLES))
            out[path.name] = path
        else:
            raise UsageError(f"--data {raw}: no such file or folder")
    return out


def load_catalog(overrides: Mapping[str, Path] | None = None) -> Catalog:
    overrides = dict(overrides or {})
    rows = {name: _read_table(name, overrides.get(name)) for name in TABLES}

    instances: dict[tuple[str, str], list[InstanceType]] = {}
    for r in rows["vms.csv"]:
        where = f"vms.csv {r['cloud']} {r['instance_type']} {r['region']}"
        inst = InstanceType(
            provider=r["cloud"], name=r["instance_type"], vcpus=_num(r, "vcpus", where),
            memory_gib=_num(r, "memory_gib", where), gpu=r["accelerator"].strip(),
            gpu_count=int(_opt_num(r, "accelerator_count", where) or 0), arch=r["arch"],
            region=r["region"], price_hour=_num(r, "price_hour_usd", where),
            spot_hour=_opt_num(r, "spot_price_hour_usd", where))
        instances.setdefault((inst.provider, inst.region), []).append(inst)

    gcp_gpus = {(r["region"], r["accelerator"], int(_num(r, "accelerator_count", "gpu"))):
                _num(r, "price_hour_usd", "gcp_accelerators.csv")
                for r in rows["gcp_accelerators.csv"]}
    regions = {(r["provider"], r["region"]): Region(
        r["provider"], r["region"], r["location"], r["country"].upper(), r["continent"].lower(),
        int(_num(r, "zones", f"regions.csv {r['region']}"))) for r in rows["regions.csv"]}
    storage = {(r["provider"], r["region"], r["class"]): StoragePrice(
        r["product"], _num(r, "gb_month", "storage.csv"), _num(r, "writes_per_1k", "storage.csv"),
        _num(r, "reads_per_1k", "storage.csv"), _num(r, "retrieval_per_gb", "storage.csv"))
        for r in rows["storage.csv"]}
    network = {(r["provider"], r["region"]): NetworkPrice(
        _num(r, "internet_egress_per_gb", "network.csv"),
        _num(r, "inter_region_per_gb", "network.csv"),
        _num(r, "free_internet_gb", "network.csv")) for r in rows["network.csv"]}
    databases = {(r["provider"], r["engine"]): DatabasePrice(
        r["product"], _num(r, "vcpu_hour", "databases.csv"), _num(r, "gib_hour", "databases.csv"),
        _num(r, "storage_gb_month", "databases.csv"), _num(r, "ha_multiplier", "databases.csv"),
        r["reference_region"], r["reference_vm"], r.get("note", "")) for r in rows["databases.csv"]}
    slas = {(r["provider"], r["service"], r["condition"]):
            Sla(_opt_num(r, "sla_percent", "slas.csv"), r["product"]) for r in rows["slas.csv"]}
    compliance: dict[str, list[Certification]] = {}
    for r in rows["compliance.csv"]:
        compliance.setdefault(r["provider"], []).append(
            Certification(r["regime"], r["scope"].strip(), r["note"]))
    commitments = {(r["provider"], r["pricing"]): _num(r, "discount", "commitments.csv")
                   for r in rows["commitments.csv"]}
    basis = {(r["provider"], r["pricing"]): r["basis"] for r in rows["commitments.csv"]}
    families = {(r["provider"], r["family"]): Family(
        r["processor"], int(_num(r, "year", "families.csv")),
        r["burstable"].strip().lower() in {"yes", "true", "1"}) for r in rows["families.csv"]}
    return Catalog(instances, gcp_gpus, regions, storage, network, databases, slas, compliance,
                   commitments, basis, families,
                   overridden={name: str(path) for name, path in overrides.items()})
