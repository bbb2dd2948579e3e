"""The assessment, end to end: check the request, price every allowed region, score, rank and
compare with today's platform."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cloudshift.assess.moving import compare
from cloudshift.assess.pricing import price_option
from cloudshift.assess.regimes import REGIMES, canonical_regime
from cloudshift.assess.regions import (
    check_residency,
    parse_providers,
    priced_regions,
    resolve_region,
    select_regions,
)
from cloudshift.assess.results import Assessment, CurrentPlatform, PlatformOption
from cloudshift.assess.scoring import parse_weights, score_options
from cloudshift.assess.workload import WorkloadSpec, load_workload
from cloudshift.catalog.load import Catalog, load_catalog
from cloudshift.catalog.regions import Region
from cloudshift.catalog.tables import resolve_overrides
from cloudshift.core.errors import ConfigError, UsageError

# The catalogue's tables an assessment reads; the report names the origin of each.
TABLES_READ = ("vms.csv", "gcp_accelerators.csv", "regions.csv", "storage.csv", "network.csv",
               "egress_tiers.csv", "databases.csv", "slas.csv", "compliance.csv",
               "commitments.csv", "families.csv")


def _current(cat: Catalog, workload: WorkloadSpec) -> CurrentPlatform | None:
    cur = workload.current
    if cur is None:
        return None
    region = cur.region
    if cur.provider != "on_prem" and region is not None:
        region = resolve_region(cat, f"{cur.provider}:{region}", [cur.provider],
                                workload.where("current", "region")).code
    if cur.monthly_cost_usd is not None:
        return CurrentPlatform(cur.provider, region, cur.monthly_cost_usd,
                               "stated in the workload file (current.monthly_cost_usd)")
    if cur.provider == "on_prem":
        return CurrentPlatform(cur.provider, region, None,
                               "unknown: give current.monthly_cost_usd for on-premises")
    if region is None:
        return CurrentPlatform(cur.provider, None, None,
                               "unknown: give current.region or current.monthly_cost_usd")
    reg = cat.regions.get(f"{cur.provider}:{region}")
    if reg is None or reg.key not in cat.instances:
        return CurrentPlatform(cur.provider, region, None,
                               f"unknown: no price data for {cur.provider} {region}; give "
                               "current.monthly_cost_usd")
    today = price_option(cat, workload, reg)
    hard = [p for p in today.problems if not p.startswith((*REGIMES, "minimum SLA"))]
    if hard:
        return CurrentPlatform(cur.provider, region, None,
                               "unknown: cannot price it there: " + "; ".join(hard))
    return CurrentPlatform(cur.provider, region, today.monthly_usd,
                           f"this workload priced with the same data in {cur.provider} {region}")


def assess(workload: WorkloadSpec | str | Path, *, providers: str | None = None,
           regions: Sequence[str] | None = None, weights: str | None = None,
           data: Sequence[str] = (), catalog: Catalog | None = None) -> Assessment:
    """Price ``workload`` on every selected provider and allowed region and rank the options.

    ``providers`` ("aws,gcp"), ``regions`` (replacing the file's ``requirements.regions``) and
    ``weights`` ("cost=0.5,reliability=0.5") take the CLI's syntax; ``data`` lists override
    files or folders for the catalogue's tables (the prices ``cloudshift prices update``
    fetched apply as well).
    """
    wl = workload if isinstance(workload, WorkloadSpec) else load_workload(workload)
    cat = catalog or load_catalog(resolve_overrides(data))
    chosen_providers = parse_providers(providers)
    weight_map = parse_weights(weights, wl.weights)

    req = wl.requirements
    check_residency(req.residency, wl.where("requirements", "residency"))
    regimes = _regimes(wl)
    named = _named_regions(cat, wl, regions, chosen_providers)
    current = _current(cat, wl)

    to_price, excluded, unmet = select_regions(cat, chosen_providers, named, req.residency)
    notes: list[str] = []
    if not named and not req.residency:
        for p in chosen_providers:
            notes.append(f"{p}: prices cover only " + ", ".join(priced_regions(cat, p)))

    options: list[PlatformOption] = [price_option(cat, wl, region) for region in to_price]
    score_options(options, weight_map, regimes)
    if current is not None:
        for option in options:
            compare(cat, wl, current, option)
    unmet += _unmet_per_provider(chosen_providers, options)

    options.sort(key=lambda o: (o.rank is None, o.rank or 0, o.monthly_usd, o.key))
    origin = {name: cat.origins[name] for name in TABLES_READ}
    return Assessment(wl.name, weight_map, options, excluded, unmet, notes, current, origin)


def _regimes(wl: WorkloadSpec) -> list[str]:
    """The compliance regimes the workload asks for, by their canonical names."""
    regimes = []
    for i, text in enumerate(wl.requirements.compliance):
        regime = canonical_regime(text)
        if regime is None:
            raise ConfigError(f"{wl.where('requirements', 'compliance', i)}: unknown compliance "
                              f"regime '{text}'", hint="use " + ", ".join(REGIMES))
        regimes.append(regime)
    return regimes


def _named_regions(cat: Catalog, wl: WorkloadSpec, regions: Sequence[str] | None,
                   chosen_providers: list[str]) -> list[Region]:
    """The regions to price: ``--regions`` when given, else the file's requirements.regions."""
    if not regions:
        return [resolve_region(cat, r, chosen_providers, wl.where("requirements", "regions", i))
                for i, r in enumerate(wl.requirements.regions)]
    named = [resolve_region(cat, r, chosen_providers, "--regions") for part in regions
             for r in part.split(",") if r.strip()]
    for region in named:
        if region.provider not in chosen_providers:
            raise UsageError(f"--regions {region.code} is a {region.provider} region, "
                             "which --providers leaves out",
                             hint=f"add {region.provider} to --providers or drop the region")
    return named


def _unmet_per_provider(chosen_providers: list[str], options: list[PlatformOption]) -> list[str]:
    """Say once per provider what it cannot do anywhere it was priced."""
    unmet = []
    for p in chosen_providers:
        mine = [o for o in options if o.provider == p]
        if mine and not any(o.eligible for o in mine):
            unmet.append(f"{p}: none of its priced regions ("
                         + ", ".join(o.region for o in mine)
                         + ") meets every requirement; the reasons follow")
    return unmet
