"""The catalogue's CSV tables: their names, required columns, default source, and how a table
is read (from the package through :mod:`importlib.resources`, so it works from a wheel, or
from a user's file that replaces it)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cloudshift.core.errors import ConfigError, UsageError


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]  # required; extra columns are allowed and ignored
    what: str  # what it holds and where its figures come from (details in PROVENANCE.md)
    source: str = ""  # the source id of every row when the table has no ``source`` column


_D = "recorded 2026-11-29"
TABLES: dict[str, Table] = {t.name: t for t in (
    Table("vms.csv", ("cloud", "instance_type", "vcpus", "memory_gib", "accelerator",
                      "accelerator_count", "arch", "region", "price_hour_usd",
                      "spot_price_hour_usd"),
          "instance prices (USD/h, on-demand and spot): SkyPilot price catalogue snapshot "
          "(github.com/skypilot-org/skypilot-catalog, v8 AWS/GCP, v6 Azure), retrieved "
          "2026-11-29; AWS 6 regions, GCP 7, Azure eastus and westus2 only", "skypilot-vms"),
    Table("gcp_accelerators.csv", ("cloud", "accelerator", "accelerator_count", "region",
                                   "price_hour_usd", "spot_price_hour_usd"),
          "GCP GPU prices per accelerator, same catalogue and date", "skypilot-vms"),
    Table("regions.csv", ("provider", "region", "location", "country", "continent", "zones"),
          "region locations and availability-zone counts from the providers' region pages, "
          f"{_D}"),
    Table("storage.csv", ("provider", "region", "storage_class", "gb_month", "write_1k",
                          "read_1k", "retrieval_gb", "restore_gb", "restore_1k",
                          "restore_hours"),
          "object storage list prices per class and region (first tier) from the S3, Cloud "
          "Storage and Blob Storage pricing pages: us-east-1, us-central1 and eastus for every "
          "class (2026-11; GCS 2026-09-20), other regions for the classes the assessment uses "
          f"({_D})"),
    Table("network.csv", ("provider", "region", "internet_egress_per_gb", "inter_region_per_gb",
                          "free_internet_gb"),
          "internet (first tier) and inter-region egress list prices and free allowances, "
          f"providers' pricing pages, {_D}; a blank internet price is the first tier of "
          "egress_tiers.csv"),
    Table("egress_tiers.csv", ("provider", "src_regions", "from_gb", "to_gb", "usd_per_gb"),
          "internet egress volume tiers for North American and European source regions, "
          "the providers' price pages, 2026-11"),
    Table("egress.csv", ("src", "dst", "usd_per_gb"),
          "egress price per ordered region pair: Skyplane's price profile (2022)",
          "skyplane-cost"),
    Table("throughput.csv", ("src", "dst", "gbps", "n"),
          "measured Gbit/s per ordered region pair: Skyplane's iperf3 grid (2022-01-29)",
          "skyplane-throughput"),
    Table("limits.csv", ("provider", "write_rps", "read_rps", "vm_egress_gbps",
                         "default_worker", "vm_egress_source"),
          "request-rate limits, per-VM egress caps and the default worker VM per provider "
          "(provider documentation 2026-11; Skyplane paper 2023-04)"),
    Table("vm_network.csv", ("provider", "instance_type", "network_gbps"),
          "network bandwidth of common worker VM types, providers' instance pages, 2026-11",
          "vm-network"),
    Table("databases.csv", ("provider", "engine", "product", "vcpu_hour", "gib_hour",
                            "storage_gb_month", "ha_multiplier", "reference_region",
                            "reference_vm"),
          "managed PostgreSQL/MySQL list prices (RDS, Cloud SQL, Azure Database Flexible "
          f"Server), {_D}"),
    Table("slas.csv", ("provider", "service", "condition", "sla_percent", "product"),
          "published SLAs (EC2, Compute Engine, Azure VMs, object storage, managed "
          f"databases), {_D}"),
    Table("compliance.csv", ("provider", "regime", "scope", "note"),
          f"certifications and attestations from the providers' compliance pages, {_D}"),
    Table("commitments.csv", ("provider", "pricing", "discount", "basis"),
          "1- and 3-year commitment discounts (GCP published; AWS and Azure typical values, "
          f"stated as assumptions), {_D}"),
    Table("families.csv", ("provider", "family", "processor", "year", "burstable"),
          "processor and launch year of each instance family, providers' instance-type "
          "pages"),
)}


@dataclass(frozen=True, slots=True)
class Rows:
    """A table's rows and where they were read from (``origin``: "packaged" or a path)."""

    table: Table
    rows: tuple[dict[str, str], ...]
    origin: str

    @property
    def packaged(self) -> bool:
        return self.origin == "packaged"


def packaged_text(name: str) -> str:
    return (resources.files("cloudshift.catalog") / "data" / name).read_text(encoding="utf-8")


def read_table(name: str, override: Path | None = None) -> Rows:
    table = TABLES[name]
    if override is not None:
        try:
            text = override.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ConfigError(f"cannot read data override {override}: {reason}") from None
        where, origin = str(override), str(override)
    else:
        text, where, origin = packaged_text(name), f"packaged {name}", "packaged"
    try:
        reader = csv.DictReader(io.StringIO(text))
        fields = reader.fieldnames or []
        rows = tuple(dict(r) for r in reader)
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a valid CSV file: {exc}") from None
    missing = [c for c in table.columns if c not in fields]
    if missing:
        raise ConfigError(f"{where}: missing column(s) {', '.join(missing)}",
                          hint=f"{name} needs the columns {','.join(table.columns)}")
    return Rows(table, rows, origin)


def number(row: Mapping[str, str], col: str, where: str) -> float:
    try:
        return float(row[col])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: column '{col}' holds '{row[col]}', not a number",
                          hint="fix the data file or drop the override") from None


def optional_number(row: Mapping[str, str], col: str, where: str) -> float | None:
    value = row.get(col)
    return None if value is None or not value.strip() else number(row, col, where)


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
