"""The catalogue: every price, region and instance type the planner and the assessment use.

The packaged tables are read once per process, on first use. Each :func:`load_catalog` then
lays over them what the user asked for: tables replaced by the user's files (``--data``) and
the storage rates ``cloudshift prices update`` wrote under ``$CLOUDSHIFT_HOME/prices/``, which
both ``plan`` and ``assess`` see.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from cloudshift.catalog import build, records
from cloudshift.catalog.regions import Region, split_key
from cloudshift.catalog.sources import Source
from cloudshift.catalog.storage import (
    UPDATED_FILE,
    merge_updates,
    read_updated_rows,
    shipped_storage,
    updated_source,
)
from cloudshift.catalog.tables import TABLES, Rows, packaged_text, read_table
from cloudshift.core.paths import state_home


def user_prices_dir() -> Path:
    """Where ``cloudshift prices update`` writes (the installed package may be read-only)."""
    return state_home() / "prices"


@dataclass(frozen=True)
class Catalog:
    """All tables, indexed for the questions the planner and the assessment ask. Region keys
    are ``provider:code``."""

    sources: Mapping[str, Source]
    regions: Mapping[str, Region]  # the described regions (regions.csv)
    instances: Mapping[str, tuple[records.InstanceType, ...]]  # region key -> types priced there
    gcp_gpus: Mapping[tuple[str, str, int], records.GpuPrice]  # (region code, gpu, count)
    storage: Mapping[tuple[str, str], records.StorageRates]  # (region key, storage class)
    network: Mapping[str, records.RegionNetwork]  # region key
    egress_tiers: tuple[records.EgressTier, ...]
    egress: Mapping[tuple[str, str], records.Figure]  # (src key, dst key) -> USD/GB
    throughput: Mapping[tuple[str, str], records.Throughput]  # (src key, dst key)
    limits: Mapping[str, records.ProviderLimits]  # provider
    vm_network: Mapping[tuple[str, str], records.Figure]  # (provider, instance type) -> Gbit/s
    databases: Mapping[tuple[str, str], records.DatabasePrice]  # (provider, engine)
    slas: Mapping[tuple[str, str, str], records.Sla]  # (provider, service, condition)
    compliance: Mapping[str, tuple[records.Certification, ...]]  # provider
    commitments: Mapping[tuple[str, str], records.Commitment]  # (provider, pricing)
    families: Mapping[tuple[str, str], records.Family]  # (provider, family)
    origins: Mapping[str, str]  # table -> "packaged", the user's file, or what updated it
    _by_type: Mapping[tuple[str, str], records.InstanceType] = field(repr=False, compare=False,
                                                             default_factory=dict)

    def region(self, key: str) -> Region:
        """The described region, or a bare one for a region only the price tables name."""
        found = self.regions.get(key)
        return found if found is not None else Region(*split_key(key))

    def instance(self, region_key: str, name: str) -> records.InstanceType | None:
        return self._by_type.get((region_key, name))

    def family(self, inst: records.InstanceType) -> records.Family | None:
        return self.families.get((inst.provider, records.family_of(inst.provider, inst.name)))

    def route_regions(self) -> set[str]:
        """Regions a move can be priced between: measured, priced for egress or for VMs."""
        names: set[str] = set()
        for pair in (*self.throughput, *self.egress):
            names.update(pair)
        names.update(self.instances)
        return names


def _sources() -> dict[str, Source]:
    rows = csv.DictReader(io.StringIO(packaged_text("sources.csv")))
    return {r["id"]: Source(r["id"], r["title"], r["url"], r["as_of"]) for r in rows}


def _build(tables: Mapping[str, Rows]) -> Catalog:
    sources = _sources()

    def of(name: str) -> tuple[Rows, build.SourceOf]:
        return tables[name], build.source_resolver(tables[name], sources)

    tiers = build.egress_tiers(*of("egress_tiers.csv"))
    storage_rows, storage_src = of("storage.csv")
    instances = build.instances(*of("vms.csv"))
    ro = MappingProxyType  # tables are read-only: one plan cannot change the next one's
    return Catalog(
        sources=ro(sources),
        regions=ro(build.regions(*of("regions.csv"))),
        instances=ro(instances),
        gcp_gpus=ro(build.gcp_gpus(*of("gcp_accelerators.csv"))),
        storage=ro(shipped_storage(storage_rows.rows, storage_src, storage_rows.origin)),
        network=ro(build.network(*of("network.csv"), tiers)),
        egress_tiers=tiers,
        egress=ro(build.egress_pairs(*of("egress.csv"))),
        throughput=ro(build.throughput(*of("throughput.csv"))),
        limits=ro(build.limits(*of("limits.csv"), sources)),
        vm_network=ro(build.vm_network(*of("vm_network.csv"))),
        databases=ro(build.databases(*of("databases.csv"))),
        slas=ro(build.slas(*of("slas.csv"))),
        compliance=ro(build.compliance(*of("compliance.csv"))),
        commitments=ro(build.commitments(*of("commitments.csv"))),
        families=ro(build.families(*of("families.csv"))),
        origins=ro({name: rows.origin for name, rows in tables.items()}),
        _by_type=ro({(k, t.name): t for k, types in instances.items() for t in types}))


@functools.cache
def _packaged_rows() -> Mapping[str, Rows]:
    return MappingProxyType({name: read_table(name) for name in TABLES})


@functools.cache
def _packaged() -> Catalog:
    return _build(_packaged_rows())


def _with_updates(cat: Catalog, folder: Path) -> Catalog:
    rows = read_updated_rows(folder)
    if not rows:
        return cat
    sources = dict(cat.sources)
    for row in rows:
        src = updated_source(row)
        sources.setdefault(src.id, src)
    origin = cat.origins["storage.csv"]
    return replace(cat, sources=MappingProxyType(sources),
                   storage=MappingProxyType(merge_updates(dict(cat.storage), rows, folder)),
                   origins=MappingProxyType({**cat.origins, "storage.csv":
                                             f"{origin}, updated from {folder / UPDATED_FILE}"}))


def load_catalog(overrides: Mapping[str, Path] | None = None, *,
                 user_dir: Path | None = None) -> Catalog:
    """The catalogue, with ``overrides`` (table name -> the user's file replacing it) and the
    prices ``cloudshift prices update`` wrote in ``user_dir`` (default: the user's folder)."""
    if overrides:
        packaged = _packaged_rows()
        cat = _build({name: read_table(name, overrides[name]) if name in overrides
                      else packaged[name] for name in TABLES})
    else:
        cat = _packaged()
    return _with_updates(cat, user_dir if user_dir is not None else user_prices_dir())
