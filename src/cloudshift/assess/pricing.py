"""Price one provider and region: compute, storage, requests, network and databases, plus the
facts the scores rest on (composite SLA of the services used, certifications held)."""

from __future__ import annotations

from cloudshift.assess.matching import match_group
from cloudshift.assess.regimes import REGIMES, canonical_regime
from cloudshift.assess.results import CostLine, PlatformOption
from cloudshift.assess.tiers import TIERS, tier_prices
from cloudshift.assess.workload import WorkloadSpec
from cloudshift.catalog.load import Catalog
from cloudshift.catalog.regions import Region


def _db_region_factor(cat: Catalog, provider: str, region: str,
                      reference_region: str, reference_vm: str) -> float | None:
    """Managed databases are priced in one reference region; other regions are scaled by how a
    comparable general-purpose VM is priced there (see docs/assessment.md)."""
    def price(reg: str) -> float | None:
        inst = cat.instance(f"{provider}:{reg}", reference_vm)
        return None if inst is None else inst.price_hour
    here, ref = price(region), price(reference_region)
    return None if here is None or ref is None or ref == 0 else here / ref


_PRICING_BASIS = {"on_demand": "on-demand", "spot": "spot", "commit_1y": "1-year commitment",
                  "commit_3y": "3-year commitment"}


def price_option(cat: Catalog, workload: WorkloadSpec, region: Region) -> PlatformOption:
    opt = PlatformOption(region.provider, region.code, region.location, region.zones)
    _price_compute(cat, workload, region, opt)
    _price_storage(cat, workload, region, opt)
    _price_network(cat, workload, region, opt)
    _price_databases(cat, workload, region, opt)
    _sla(cat, workload, region, opt)
    _compliance(cat, workload, region, opt)
    return opt


def _price_compute(cat: Catalog, workload: WorkloadSpec, region: Region,
                   opt: PlatformOption) -> None:
    p, r = region.provider, region.code
    for group in workload.compute:
        m = match_group(cat, p, r, group)
        opt.matches.append(m)
        if m.chosen is None:
            opt.problems.append(m.problem or f"{group.name}: no instance type fits")
            continue
        basis = _PRICING_BASIS[group.pricing]
        opt.lines.append(CostLine(
            "compute", group.name, m.monthly_usd,
            f"{group.count} x {m.chosen.name} x {group.hours_per_month:g} h x "
            f"${m.chosen.hourly_usd:.4f}/h ({basis})"))


def _price_storage(cat: Catalog, workload: WorkloadSpec, region: Region,
                   opt: PlatformOption) -> None:
    used = [(c, getattr(workload.storage, c)) for c in TIERS]
    for cls, spec in used:
        # A class the workload leaves empty needs no price data, so a gap there is no problem.
        if not (spec.gb or spec.writes_per_month or spec.reads_per_month
                or spec.retrieved_gb_per_month):
            continue
        sp = tier_prices(cat, region.key, cls)
        if sp is None:
            opt.problems.append(f"no {cls} storage price data for {region.provider} "
                                f"{region.code}")
            continue
        opt.lines.append(CostLine("storage", f"{cls} storage", spec.gb * sp.gb_month,
                                  f"{spec.gb:g} GB x ${sp.gb_month}/GB-month ({sp.product})"))
        ops = (spec.writes_per_month / 1000 * sp.writes_per_1k
               + spec.reads_per_month / 1000 * sp.reads_per_1k
               + spec.retrieved_gb_per_month * sp.retrieval_per_gb)
        if ops:
            parts = [f"{n:,.0f} {what} x ${rate}/{unit}" for n, what, rate, unit in (
                (spec.writes_per_month, "writes", sp.writes_per_1k, "1k"),
                (spec.reads_per_month, "reads", sp.reads_per_1k, "1k"),
                (spec.retrieved_gb_per_month, "GB retrieved", sp.retrieval_per_gb, "GB")) if n]
            opt.lines.append(CostLine("requests", f"{cls} requests", ops, " + ".join(parts)))


def _price_network(cat: Catalog, workload: WorkloadSpec, region: Region,
                   opt: PlatformOption) -> None:
    net = workload.network
    if not (net.internet_egress_gb or net.inter_region_egress_gb):
        return
    np_ = cat.network.get(region.key)
    if np_ is None:
        opt.problems.append(f"no network price data for {region.provider} {region.code}")
        return
    # Only the internet egress past the provider's monthly free allowance is billed.
    billable = max(0.0, net.internet_egress_gb - np_.free_internet_gb)
    internet, inter = np_.internet_egress_gb.value, np_.inter_region_gb.value
    if net.internet_egress_gb:
        opt.lines.append(CostLine(
            "network", "internet egress", billable * internet,
            f"({net.internet_egress_gb:g} GB - {np_.free_internet_gb:g} GB free) x "
            f"${internet}/GB"))
    if net.inter_region_egress_gb:
        opt.lines.append(CostLine(
            "network", "inter-region egress", net.inter_region_egress_gb * inter,
            f"{net.inter_region_egress_gb:g} GB x ${inter}/GB"))


def _price_databases(cat: Catalog, workload: WorkloadSpec, region: Region,
                     opt: PlatformOption) -> None:
    p, r = region.provider, region.code
    for db in workload.databases:
        dp = cat.databases.get((p, db.engine))
        if dp is None:
            opt.problems.append(f"{db.name}: no {db.engine} database price data for {p}")
            continue
        factor = _db_region_factor(cat, p, r, dp.reference_region, dp.reference_vm)
        if factor is None:
            opt.problems.append(f"{db.name}: no price for {dp.reference_vm} in {p} {r}, so the "
                                "database price cannot be carried over from "
                                f"{dp.reference_region}")
            continue
        mult = dp.ha_multiplier if db.high_availability else 1.0
        hourly = (db.vcpus * dp.vcpu_hour + db.memory_gib * dp.gib_hour) * factor * mult
        storage = db.storage_gb * dp.storage_gb_month * mult
        opt.lines.append(CostLine(
            "database", db.name, hourly * 730 + storage,
            f"{dp.product}: ({db.vcpus:g} vCPU x ${dp.vcpu_hour} + {db.memory_gib:g} GiB x "
            f"${dp.gib_hour}) x {factor:.3f} region factor x {mult:g} x 730 h + "
            f"{db.storage_gb:g} GB x ${dp.storage_gb_month} x {mult:g}"
            f"{' (HA)' if db.high_availability else ''}"))


def _sla(cat: Catalog, workload: WorkloadSpec, region: Region, opt: PlatformOption) -> None:
    """Composite SLA = product of the SLAs of the services the workload runs on."""
    p = region.provider
    services: list[tuple[str, str, str, str]] = []
    for group in workload.compute:
        multi = group.count >= 2 and region.zones >= 2
        services.append((group.name, "compute", "multi_zone" if multi else "single",
                         f"{group.count} instance(s)"))
    warmest = next((c for c in TIERS if getattr(workload.storage, c).gb), None)
    if warmest:
        services.append((f"{warmest} storage", f"storage_{warmest}", "any", "warmest class used"))
    for db in workload.databases:
        services.append((db.name, "database", "ha" if db.high_availability else "single",
                         "HA" if db.high_availability else "no HA"))
    composite: float | None = 1.0
    for name, service, condition, why in services:
        sla = cat.slas.get((p, service, condition))
        if sla is None or sla.percent is None:
            product = sla.product if sla else f"{service} ({condition})"
            opt.sla_evidence.append(f"{name}: {product}: no published SLA")
            composite = None
            continue
        opt.sla_evidence.append(f"{name}: {sla.product} {sla.percent:g}% ({why})")
        if composite is not None:
            composite *= sla.percent / 100
    opt.sla_percent = None if composite is None or not services else composite * 100
    need = workload.requirements.min_sla
    if need is not None:
        if opt.sla_percent is None:
            opt.problems.append(f"minimum SLA {need:g}%: a service used has no published SLA")
        elif opt.sla_percent + 1e-9 < need:
            opt.problems.append(f"minimum SLA {need:g}%: the services used give "
                                f"{opt.sla_percent:.3f}% combined")


def _compliance(cat: Catalog, workload: WorkloadSpec, region: Region, opt: PlatformOption) -> None:
    certs = cat.compliance.get(region.provider, ())
    held = {c.regime for c in certs if c.covers(region)}
    opt.certifications = [r for r in REGIMES if r in held]
    for wanted in workload.requirements.compliance:
        regime = canonical_regime(wanted) or wanted
        if regime in held:
            continue
        scoped = [c for c in certs if c.regime == regime]
        if scoped:
            opt.problems.append(f"{regime}: {region.provider} holds it only for {scoped[0].scope} "
                                f"regions, not {region.code} ({region.location}, "
                                f"{region.country})")
        else:
            opt.problems.append(f"{regime}: no {region.provider} certification in the data")
