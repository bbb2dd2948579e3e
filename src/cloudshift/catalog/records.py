"""The catalogue's rows, typed: each names where its figures come from (a :class:`Source`).

Units: money in USD; 1 GB = 2**30 bytes (the providers bill binary gigabytes); throughput in
Gbit/s (10**9 bits per second).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cloudshift.catalog.regions import Region
from cloudshift.catalog.sources import Source


@dataclass(frozen=True, slots=True)
class Figure:
    """One number and its source; ``note`` says how it was obtained when that is not plain
    (taken from another region, a default)."""

    value: float
    source: Source
    note: str = ""


@dataclass(frozen=True, slots=True)
class InstanceType:
    provider: str
    name: str
    vcpus: float
    memory_gib: float
    gpu: str  # "" when the type has no accelerator
    gpu_count: int
    arch: str
    region: str  # the region's code within its provider, e.g. us-east-1
    price_hour: float  # on-demand USD/hour
    spot_hour: float | None
    source: Source = field(compare=False)

    @property
    def region_key(self) -> str:
        return f"{self.provider}:{self.region}"


@dataclass(frozen=True, slots=True)
class GpuPrice:
    """A GCP accelerator priced on its own (it attaches to an n1 machine priced apart)."""

    price_hour: float
    spot_hour: float | None
    source: Source


STORAGE_FIELDS = ("gb_month", "write_1k", "read_1k", "retrieval_gb", "restore_gb",
                  "restore_1k", "restore_hours")


@dataclass(frozen=True, slots=True)
class StorageRates:
    """One storage class in one region. Each rate carries its own source, since ``prices
    update`` may refresh some rates of a row and not others."""

    region: str  # provider:code
    storage_class: str  # the provider's name: STANDARD, STANDARD_IA, NEARLINE, HOT, ...
    product: str  # "S3 Standard", "Blob Storage Hot LRS"
    gb_month: Figure
    write_1k: Figure  # per 1,000 write (and LIST) requests
    read_1k: Figure  # per 1,000 reads of an object that can be read directly
    retrieval_gb: Figure  # per GB read from an infrequent-access class
    restore_gb: Figure  # per GB restored from an offline (archive) class
    restore_1k: Figure  # per 1,000 restore requests (S3) or archive reads (Azure rehydration)
    restore_hours: Figure  # hours a standard restore takes; 0: readable at once
    min_days: int  # minimum storage duration billed

    def rate(self, name: str) -> Figure:
        value: Figure = getattr(self, name)
        return value

    @property
    def needs_restore(self) -> bool:
        return self.restore_hours.value > 0


@dataclass(frozen=True, slots=True)
class RegionNetwork:
    """Egress out of one region, as a month's bill sees it (first tier)."""

    internet_egress_gb: Figure
    inter_region_gb: Figure
    free_internet_gb: float


@dataclass(frozen=True, slots=True)
class EgressTier:
    """One volume tier of internet egress for the source regions matching ``src_regions``
    (shell patterns of region codes)."""

    provider: str
    src_regions: tuple[str, ...]
    from_gb: float
    to_gb: float | None
    usd_per_gb: float
    source: Source


@dataclass(frozen=True, slots=True)
class Throughput:
    """Median measured Gbit/s between one VM per side, over ``n`` measurements."""

    gbps: float
    n: int
    source: Source


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    provider: str
    write_rps: Figure
    read_rps: Figure
    vm_egress_gbps: Figure
    default_worker: str


@dataclass(frozen=True, slots=True)
class DatabasePrice:
    product: str
    vcpu_hour: float
    gib_hour: float
    storage_gb_month: float
    ha_multiplier: float
    reference_region: str
    reference_vm: str
    note: str
    source: Source


@dataclass(frozen=True, slots=True)
class Sla:
    percent: float | None  # None: the provider publishes no availability SLA for it
    product: str
    source: Source


@dataclass(frozen=True, slots=True)
class Certification:
    regime: str
    scope: str  # "all", "country:US", "continent:europe", "region:a|b"
    note: str
    source: Source

    def covers(self, region: Region) -> bool:
        if self.scope == "all":
            return True
        kind, _, value = self.scope.partition(":")
        if kind == "country":
            return region.country in {v.strip().upper() for v in value.split("|")}
        if kind == "continent":
            return region.continent == value.strip().lower()
        if kind == "region":
            return region.code in {v.strip() for v in value.split("|")}
        return False


@dataclass(frozen=True, slots=True)
class Commitment:
    discount: float
    basis: str
    source: Source


@dataclass(frozen=True, slots=True)
class Family:
    processor: str
    year: int
    burstable: bool
    source: Source


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
