"""Rows of each table -> the catalogue's typed records, with one-line errors naming the row."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import replace

from cloudshift.catalog.records import (
    Certification,
    Commitment,
    DatabasePrice,
    EgressTier,
    Family,
    Figure,
    GpuPrice,
    InstanceType,
    ProviderLimits,
    RegionNetwork,
    Sla,
    Throughput,
)
from cloudshift.catalog.regions import Region
from cloudshift.catalog.sources import Source
from cloudshift.catalog.tables import Rows, number, optional_number
from cloudshift.core.errors import ConfigError

SourceOf = Callable[[Mapping[str, str]], Source]


def source_resolver(rows: Rows, sources: Mapping[str, Source]) -> SourceOf:
    """Packaged rows name a source id (or the table's default) and may give their own page
    (``url``); every row of a user's replacement file is cited as that file."""
    if not rows.packaged:
        theirs = Source("override", f"override from {rows.origin}", rows.origin, "user")
        return lambda _row: theirs

    def source_of(row: Mapping[str, str]) -> Source:
        sid = row.get("source") or rows.table.source
        found = sources.get(sid)
        if found is None:
            raise ConfigError(f"packaged {rows.table.name}: source '{sid}' is not in "
                              "sources.csv")
        url = (row.get("url") or "").strip()
        return replace(found, url=url) if url else found

    return source_of


def instances(rows: Rows, source_of: SourceOf) -> dict[str, tuple[InstanceType, ...]]:
    out: dict[str, list[InstanceType]] = {}
    for r in rows.rows:
        where = f"vms.csv {r['cloud']} {r['instance_type']} {r['region']}"
        inst = InstanceType(
            provider=r["cloud"], name=r["instance_type"], vcpus=number(r, "vcpus", where),
            memory_gib=number(r, "memory_gib", where), gpu=r["accelerator"].strip(),
            gpu_count=int(optional_number(r, "accelerator_count", where) or 0), arch=r["arch"],
            region=r["region"], price_hour=number(r, "price_hour_usd", where),
            spot_hour=optional_number(r, "spot_price_hour_usd", where), source=source_of(r))
        out.setdefault(inst.region_key, []).append(inst)
    return {k: tuple(v) for k, v in out.items()}


def gcp_gpus(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str, int], GpuPrice]:
    where = "gcp_accelerators.csv"
    return {(r["region"], r["accelerator"], int(number(r, "accelerator_count", where))):
            GpuPrice(number(r, "price_hour_usd", where),
                     optional_number(r, "spot_price_hour_usd", where), source_of(r))
            for r in rows.rows}


def regions(rows: Rows, source_of: SourceOf) -> dict[str, Region]:
    out = {}
    for r in rows.rows:
        region = Region(r["provider"], r["region"], r["location"], r["country"].upper(),
                        r["continent"].lower(),
                        int(number(r, "zones", f"regions.csv {r['region']}")), source_of(r))
        out[region.key] = region
    return out


def egress_tiers(rows: Rows, source_of: SourceOf) -> tuple[EgressTier, ...]:
    where = "egress_tiers.csv"
    return tuple(EgressTier(r["provider"], tuple(r["src_regions"].split()),
                            number(r, "from_gb", where), optional_number(r, "to_gb", where),
                            number(r, "usd_per_gb", where), source_of(r)) for r in rows.rows)


def first_tier(tiers: tuple[EgressTier, ...], provider: str, code: str) -> EgressTier | None:
    schedule = [t for t in tiers if t.provider == provider
                and any(fnmatch.fnmatchcase(code, p) for p in t.src_regions)]
    return min(schedule, key=lambda t: t.from_gb, default=None)


def network(rows: Rows, source_of: SourceOf, tiers: tuple[EgressTier, ...]
            ) -> dict[str, RegionNetwork]:
    out = {}
    for r in rows.rows:
        key, where = f"{r['provider']}:{r['region']}", f"network.csv {r['region']}"
        source = source_of(r)
        internet = optional_number(r, "internet_egress_per_gb", where)
        if internet is not None:
            internet_fig = Figure(internet, source)
        else:
            # Written once, in the tier schedule: a blank is the first tier's price.
            tier = first_tier(tiers, r["provider"], r["region"])
            if tier is None:
                raise ConfigError(f"{where}: internet_egress_per_gb is blank and no tier of "
                                  "egress_tiers.csv covers the region",
                                  hint="give the region's first-tier internet price")
            internet_fig = Figure(tier.usd_per_gb, tier.source, "first volume tier")
        out[key] = RegionNetwork(internet_fig,
                                 Figure(number(r, "inter_region_per_gb", where), source),
                                 number(r, "free_internet_gb", where))
    return out


def egress_pairs(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], Figure]:
    return {(r["src"], r["dst"]): Figure(number(r, "usd_per_gb", "egress.csv"), source_of(r))
            for r in rows.rows}


def throughput(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], Throughput]:
    where = "throughput.csv"
    return {(r["src"], r["dst"]): Throughput(number(r, "gbps", where), int(number(r, "n", where)),
                                             source_of(r)) for r in rows.rows}


def limits(rows: Rows, source_of: SourceOf, sources: Mapping[str, Source]
           ) -> dict[str, ProviderLimits]:
    out = {}
    for r in rows.rows:
        where, src = f"limits.csv {r['provider']}", source_of(r)
        cap_src = sources.get(r["vm_egress_source"], src) if rows.packaged else src
        out[r["provider"]] = ProviderLimits(
            r["provider"], Figure(number(r, "write_rps", where), src),
            Figure(number(r, "read_rps", where), src),
            Figure(number(r, "vm_egress_gbps", where), cap_src), r["default_worker"])
    return out


def vm_network(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], Figure]:
    return {(r["provider"], r["instance_type"]):
            Figure(number(r, "network_gbps", "vm_network.csv"), source_of(r)) for r in rows.rows}


def databases(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], DatabasePrice]:
    w = "databases.csv"
    return {(r["provider"], r["engine"]): DatabasePrice(
        r["product"], number(r, "vcpu_hour", w), number(r, "gib_hour", w),
        number(r, "storage_gb_month", w), number(r, "ha_multiplier", w), r["reference_region"],
        r["reference_vm"], r.get("note", ""), source_of(r)) for r in rows.rows}


def slas(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str, str], Sla]:
    return {(r["provider"], r["service"], r["condition"]):
            Sla(optional_number(r, "sla_percent", "slas.csv"), r["product"], source_of(r))
            for r in rows.rows}


def compliance(rows: Rows, source_of: SourceOf) -> dict[str, tuple[Certification, ...]]:
    out: dict[str, list[Certification]] = {}
    for r in rows.rows:
        out.setdefault(r["provider"], []).append(
            Certification(r["regime"], r["scope"].strip(), r["note"], source_of(r)))
    return {k: tuple(v) for k, v in out.items()}


def commitments(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], Commitment]:
    return {(r["provider"], r["pricing"]): Commitment(number(r, "discount", "commitments.csv"),
                                                      r["basis"], source_of(r))
            for r in rows.rows}


def families(rows: Rows, source_of: SourceOf) -> dict[tuple[str, str], Family]:
    return {(r["provider"], r["family"]): Family(
        r["processor"], int(number(r, "year", "families.csv")),
        r["burstable"].strip().lower() in {"yes", "true", "1"}, source_of(r))
        for r in rows.rows}
