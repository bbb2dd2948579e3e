"""Against the platform the workload runs on today: monthly saving, one-time move cost and
payback. The move cost here is a stated estimate (data volume x the current side's egress and
retrieval prices); the transfer planner of ``cloudshift plan`` gives the detailed one."""

from __future__ import annotations

from cloudshift.assess.results import CurrentPlatform, MoveComparison, PlatformOption
from cloudshift.assess.tiers import tier_prices
from cloudshift.assess.workload import WorkloadSpec
from cloudshift.catalog.load import Catalog


def data_volume_gb(workload: WorkloadSpec) -> float:
    return workload.storage.total_gb + sum(db.storage_gb for db in workload.databases)


def move_cost(cat: Catalog, workload: WorkloadSpec, current: CurrentPlatform,
              target: PlatformOption) -> tuple[float | None, str]:
    volume = data_volume_gb(workload)
    if current.provider == "on_prem":
        return 0.0, (f"{volume:,.0f} GB uploaded from on-premises: the clouds charge no "
                     "ingress (your own uplink is not priced)")
    if current.provider == target.provider and current.region == target.region:
        return 0.0, "already there"
    if current.region is None:
        return None, "unknown: the current region is not given (current.region)"
    here = f"{current.provider}:{current.region}"
    net = cat.network.get(here)
    if net is None:
        return None, (f"unknown: no network price data for {current.provider} "
                      f"{current.region}")
    same_cloud = current.provider == target.provider
    rate = (net.inter_region_gb if same_cloud else net.internet_egress_gb).value
    kind = "inter-region" if same_cloud else "internet"
    cost = volume * rate
    basis = f"{volume:,.0f} GB x ${rate}/GB {kind} egress from {current.provider} {current.region}"
    for cls in ("cool", "archive"):
        gb = getattr(workload.storage, cls).gb
        sp = tier_prices(cat, here, cls)
        if gb and sp is not None and sp.retrieval_per_gb:
            cost += gb * sp.retrieval_per_gb
            basis += f" + {gb:,.0f} GB {cls} retrieval x ${sp.retrieval_per_gb}/GB"
    return cost, basis


def compare(cat: Catalog, workload: WorkloadSpec, current: CurrentPlatform,
            target: PlatformOption) -> None:
    saving = None if current.monthly_usd is None else current.monthly_usd - target.monthly_usd
    cost, basis = move_cost(cat, workload, current, target)
    if basis == "already there":
        payback, note = None, "current platform"
    elif saving is None:
        payback, note = None, "unknown: today's monthly cost is unknown"
    elif cost is None:
        payback, note = None, "unknown: the move cost is unknown"
    elif saving <= 0:
        payback, note = None, "never: no monthly saving"
    elif cost == 0:
        payback, note = 0.0, "immediate (no move cost)"
    else:
        payback = cost / saving
        note = f"{payback:.1f} months"
    target.move = MoveComparison(saving, cost, basis, payback, note)
