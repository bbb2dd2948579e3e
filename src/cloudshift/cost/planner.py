"""``cloudshift plan``: what a move would cost and how long it would take, before a byte moves.

:func:`plan` lists SRC, compares it with DST the way ``copy`` does (same listing, same
per-object rules), summarises what would move, and prices every option: direct or relayed
through a third region, with 1..32 worker VMs, or from this machine. :func:`plan_workload`
does the same for a workload described by numbers instead of a listing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudshift.catalog.regions import LOCAL, Region
from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.core.paths import jobs_root
from cloudshift.core.redact import describe
from cloudshift.core.units import parse_duration
from cloudshift.core.uri import parse
from cloudshift.cost.model import (
    DEFAULT_LINK_GBPS,
    ProbeRate,
    Restore,
    ServiceFees,
    Term,
    Timing,
    TransferWorkload,
    cloud_timing,
    egress_fees,
    local_timing,
    service_fees,
    vm_fees,
)
from cloudshift.cost.prices import DEFAULT_REGION, GB, SCHEME_PROVIDER, Price, PriceBook
from cloudshift.storage import open_store
from cloudshift.storage.base import DEFAULT_PART_SIZE, ObjectInfo
from cloudshift.transfer.engine import check_overlap, decide
from cloudshift.transfer.journal import object_spec
from cloudshift.transfer.listing import KeyFilter, filtered, merge_join, ordered

WORKER_COUNTS = (1, 2, 4, 8, 16, 32)
MAX_RELAYS = 3
RELAY_GAIN = 1.1  # a relay must beat the direct path's measured rate by 10% to be listed
PROBE_CANDIDATES = 2000
PLAN_FILE = "plan.json"


def _deadline_s(deadline: str | float) -> float:
    return parse_duration(deadline, name="--deadline",
                          hint="give the time the move may take, e.g. --deadline 12h")


@dataclass
class TransferOption:
    """One way of doing the move, priced and timed."""

    name: str
    kind: str                # "vm" (worker VMs in the cloud) | "local" (this machine)
    route: list[str]
    workers: int
    worker_types: list[str]
    timing: Timing
    c_s: Term
    c_d: Term
    c_v: Term
    pareto: bool = False
    best: bool = False
    meets: bool = True

    @property
    def total_usd(self) -> float:
        return self.c_s.usd + self.c_d.usd + self.c_v.usd

    @property
    def time_s(self) -> float:
        return self.timing.total_seconds

    @property
    def gb_per_usd(self) -> float | None:
        return None if self.total_usd <= 0 else self._gb / self.total_usd

    _gb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "route": self.route,
                "workers": self.workers, "worker_types": self.worker_types,
                "time_s": round(self.time_s, 3),
                "transfer_s": round(self.timing.seconds, 3),
                "restore_wait_s": round(self.timing.restore_seconds, 3),
                "bytes_per_s": round(self.timing.bytes_per_s, 1),
                "bottleneck": self.timing.bottleneck,
                "cost_usd": round(self.total_usd, 6),
                "gb_per_usd": None if self.gb_per_usd is None else round(self.gb_per_usd, 4),
                "terms": {t.name: t.to_dict() for t in (self.c_s, self.c_d, self.c_v)},
                "pareto": self.pareto, "best": self.best, "meets_constraints": self.meets}


@dataclass
class RunningCost:
    """Storage per month for the moved data, before and after, and when the move pays off."""

    src_usd_month: float
    dst_usd_month: float
    src_prices: list[Price]
    dst_price: Price | None
    payback_months: float | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"src_usd_month": round(self.src_usd_month, 6),
                "dst_usd_month": round(self.dst_usd_month, 6),
                "saving_usd_month": round(self.src_usd_month - self.dst_usd_month, 6),
                "payback_months": (None if self.payback_months is None
                                   else round(self.payback_months, 3)),
                "src_prices": [p.to_dict() for p in self.src_prices],
                "dst_price": self.dst_price.to_dict() if self.dst_price else None,
                "note": self.note}


@dataclass
class Plan:
    """The answer to "what will it cost, how long will it take, which way is best"."""

    src: str
    dst: str
    src_region: str
    dst_region: str
    dst_class: str
    workload: TransferWorkload
    options: list[TransferOption]
    best: TransferOption
    restores: list[Restore]
    running: RunningCost
    deadline_s: float | None = None
    budget_usd: float | None = None
    probe: ProbeRate | None = None
    sampled: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)
    job_id: str | None = None
    saved_to: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def cost_usd(self) -> float:
        return self.best.total_usd

    @property
    def time_s(self) -> float:
        return self.best.time_s

    def to_dict(self) -> dict[str, Any]:
        return {"type": "plan", "created": self.created, "src": self.src, "dst": self.dst,
                "src_region": self.src_region, "dst_region": self.dst_region,
                "dst_class": self.dst_class, "job_id": self.job_id,
                "saved_to": self.saved_to,
                "workload": self.workload.to_dict(), "sampled": self.sampled,
                "restores": [r.to_dict() for r in self.restores],
                "deadline_s": self.deadline_s, "budget_usd": self.budget_usd,
                "best": self.best.name, "cost_usd": round(self.cost_usd, 6),
                "time_s": round(self.time_s, 3),
                "options": [o.to_dict() for o in self.options],
                "running": self.running.to_dict(),
                "probe": self.probe.to_dict() if self.probe else None,
                "warnings": self.warnings, "prices": [p.to_dict() for p in self.prices]}


# --- regions -------------------------------------------------------------------------------------
def location_region(book: PriceBook, uri: str, given: str | None, side: str,
                    warnings: list[str]) -> Region:
    """The region a location is priced in: the one given, or its provider's default (said)."""
    scheme = parse(uri).scheme
    provider = SCHEME_PROVIDER[scheme]
    if given is None:
        if provider == "local":
            return LOCAL
        region = book.region(DEFAULT_REGION[provider])
        warnings.append(f"{side} region not given; assumed {region} "
                        f"(pass --{side}-region to be exact)")
        return region
    region = book.region(given)
    if provider != "local" and region.provider != provider:
        raise UsageError(f"--{side}-region {given} is on {region.provider}, but {uri} is on "
                         f"{provider}", hint=f"give a {provider}:REGION")
    if provider == "local" and not region.local:
        warnings.append(f"{side.upper()} {uri} is local; priced as if it were in {region}")
    return region


# --- options -------------------------------------------------------------------------------------
def _relays(book: PriceBook, src: Region, dst: Region) -> list[Region]:
    """Third regions through which the measured grid says data moves faster (overlay)."""
    direct = book.measured(src, dst) or 0.0
    scored: list[tuple[float, str]] = []
    for name in book.known_regions():
        via = book.catalog.region(name)
        if via in (src, dst):
            continue
        a, b = book.measured(src, via), book.measured(via, dst)
        if a is None or b is None:
            continue
        rate = min(a, b)
        if rate > direct * RELAY_GAIN:
            scored.append((rate, name))
    scored.sort(reverse=True)
    return [book.catalog.region(n) for _, n in scored[:MAX_RELAYS]]


def _choose(options: list[TransferOption], deadline_s: float | None, budget: float | None,
            warnings: list[str]) -> TransferOption:
    for o in options:
        o.meets = ((deadline_s is None or o.time_s <= deadline_s)
                   and (budget is None or o.total_usd <= budget))
        o.pareto = not any(
            p is not o and p.total_usd <= o.total_usd and p.time_s <= o.time_s
            and (p.total_usd < o.total_usd or p.time_s < o.time_s) for p in options)
    feasible = [o for o in options if o.meets]
    if budget is not None and deadline_s is None:
        pool = feasible or options
        best = min(pool, key=lambda o: (o.time_s, o.total_usd)) if feasible else \
            min(pool, key=lambda o: (o.total_usd, o.time_s))
    else:
        pool = feasible or options
        # Cents decide; a cheaper option that is slower only wins by at least a cent.
        best = min(pool, key=lambda o: (round(o.total_usd, 2), o.time_s)) if feasible else \
            min(pool, key=lambda o: (o.time_s, o.total_usd))
    if not feasible:
        what = []
        if deadline_s is not None:
            what.append(f"the deadline ({_hours(deadline_s)})")
        if budget is not None:
            what.append(f"the budget ({budget:g} USD)")
        warnings.append(f"no option meets {' and '.join(what)}; showing the "
                        f"{'fastest' if deadline_s is not None else 'cheapest'} instead")
    best.best = True
    return best


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def plan_workload(workload: TransferWorkload, *, src_region: str | Region,
                  dst_region: str | Region, dst_class: str | None = None,
                  deadline: str | float | None = None, budget: float | None = None,
                  workers: int | None = None, worker_type: str | None = None,
                  link_gbps: float | None = None, prices: str | Path | None = None,
                  book: PriceBook | None = None, probe: ProbeRate | None = None,
                  src: str = "", dst: str = "", warnings: Sequence[str] = ()) -> Plan:
    """Price and time every option for ``workload`` moving from ``src_region`` to
    ``dst_region``. Regions are ``provider:region`` or ``local``."""
    book = book or PriceBook.load(prices)
    notes = list(warnings)
    s = src_region if isinstance(src_region, Region) else book.region(src_region)
    d = dst_region if isinstance(dst_region, Region) else book.region(dst_region)
    deadline_s = _deadline_s(deadline) if deadline is not None else None
    _check_budget(budget)
    _check_machines(book, s, workers, worker_type, link_gbps)
    cls = _dst_storage_class(book, d, dst_class)

    fees = service_fees(book, workload, s, d, cls)
    notes.extend(fees.warnings)
    options = _vm_options(book, workload, s, d, fees, workers, worker_type, notes)
    options.append(_local_option(book, workload, s, d, fees, link_gbps, probe, notes))
    for o in options:
        o._gb = workload.gb
    best = _choose(options, deadline_s, budget, notes)
    running = _running(book, workload, s, d, cls, best.total_usd)
    for r in fees.restores:
        notes.append(f"{r.objects} objects ({r.bytes / GB:.1f} GB) in {r.storage_class} must be "
                     f"restored before copying: about {r.hours:g} h and {r.usd:.2f} USD")
    return Plan(src or str(s), dst or str(d), str(s), str(d), cls, workload, options, best,
                fees.restores, running, deadline_s, budget, probe, None,
                list(dict.fromkeys(notes)), sorted(book.used.values(), key=lambda p: p.key))


def _check_budget(budget: float | None) -> None:
    if budget is not None and not budget > 0:
        raise UsageError(f"--budget must be positive (got {budget:g})",
                         hint="give the most the move may cost in USD, e.g. --budget 500")


def _check_machines(book: PriceBook, s: Region, workers: int | None, worker_type: str | None,
                    link_gbps: float | None) -> None:
    """The options that say what would do the copying: worker VMs or this machine's link."""
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be 0 or more (got {workers})",
                         hint="0 means: run from this machine only")
    if link_gbps is not None and not link_gbps > 0:
        raise UsageError(f"--link-gbps must be positive (got {link_gbps:g})")
    if worker_type is not None:
        # It names a VM of the source's provider; relay hops on other clouds keep their default.
        if s.local:
            raise UsageError("--worker-type needs a cloud source region",
                             hint="give --src-region, or drop --worker-type")
        book.check_worker_type(s.provider, worker_type)


def _dst_storage_class(book: PriceBook, d: Region, dst_class: str | None) -> str:
    cls = book.normalize_class(d.provider, dst_class) if not d.local else "LOCAL"
    if dst_class and not d.local and cls not in book.storage_classes(d.provider):
        raise UsageError(f"unknown {d.provider} storage class '{dst_class}'",
                         hint="one of " + ", ".join(book.storage_classes(d.provider)))
    return cls


def _vm_options(book: PriceBook, workload: TransferWorkload, s: Region, d: Region,
                fees: ServiceFees, workers: int | None, worker_type: str | None,
                notes: list[str]) -> list[TransferOption]:
    """Worker VMs in the cloud, direct or through each faster relay, for every worker count."""
    # Worker VMs need a cloud on both ends; --workers 0 asks for this machine alone.
    if s.local or d.local or workers == 0:
        return []
    options: list[TransferOption] = []
    counts = (workers,) if workers else WORKER_COUNTS
    routes = [[s, d]] + [[s, via, d] for via in _relays(book, s, d)]
    for route in routes:
        types = [worker_type if (worker_type and r.provider == s.provider)
                 else book.limits(r.provider).default_worker for r in route[:-1]]
        for n in counts:
            timing = cloud_timing(book, workload, route, n, types, fees.restore_hours)
            c_d, w1 = egress_fees(book, workload.gb, route)
            c_v, w2 = vm_fees(book, list(zip(route[:-1], types, strict=True)), n,
                              timing.seconds)
            notes.extend(timing.warnings + w1 + w2)
            label = ("direct" if len(route) == 2 else f"relay via {route[1]}")
            options.append(TransferOption(f"{label}, {n} x {types[0]}", "vm",
                                  [str(r) for r in route], n, types, timing, fees.term,
                                  c_d, c_v))
    return options


def _local_option(book: PriceBook, workload: TransferWorkload, s: Region, d: Region,
                  fees: ServiceFees, link_gbps: float | None, probe: ProbeRate | None,
                  notes: list[str]) -> TransferOption:
    """This machine copying, at its link's rate or the one --probe measured."""
    link = link_gbps or DEFAULT_LINK_GBPS
    timing = local_timing(book, workload, s, d, link, fees.restore_hours, probe)
    # Through this machine the bytes leave the source cloud to the internet; uploads are free.
    c_d, w1 = egress_fees(book, workload.gb, [s, d] if (s.local or d.local) else [s, LOCAL])
    notes.extend(w1)
    label = "this machine"
    if probe is not None:
        label += " (rate measured by --probe)"
    elif link_gbps is None:
        label += f" (link {link:g} Gbit/s assumed; pass --link-gbps or --probe)"
    else:
        label += f" (link {link:g} Gbit/s)"
    return TransferOption(label, "local", [str(s), "this machine", str(d)], 0, [], timing,
                          fees.term, c_d, Term("C_v"))


def _running(book: PriceBook, wl: TransferWorkload, s: Region, d: Region, cls: str, one_time: float
             ) -> RunningCost:
    src_total = 0.0
    src_prices: list[Price] = []
    note = ""
    if s.local:
        note = "on-premises storage cost is not modelled (source counted as 0 USD/month)"
    else:
        for name, totals in sorted(wl.by_class.items()):
            sp, _ = book.storage_prices(s, name)
            src_prices.append(sp.gb_month)
            src_total += totals.bytes / GB * sp.gb_month.value
    dst_total = 0.0
    dst_price = None
    if not d.local:
        dp, _ = book.storage_prices(d, cls)
        dst_price = dp.gb_month
        dst_total = wl.gb * dp.gb_month.value
    saving = src_total - dst_total
    payback = one_time / saving if saving > 0 else None
    return RunningCost(src_total, dst_total, src_prices, dst_price, payback, note)


# --- listing ------------------------------------------------------------------------------
def summarize(src_uri: str, dst_uri: str, *, book: PriceBook, src_region: Region,
              dst_region: Region, part_size: int = DEFAULT_PART_SIZE,
              include: Sequence[str] = (), exclude: Sequence[str] = (),
              src_endpoint: str | None = None, dst_endpoint: str | None = None,
              sample: int | None = None) -> tuple[TransferWorkload, bool, list[ObjectInfo], Any]:
    """List both sides with the engine's march and decide per object like ``copy`` would.

    Returns the workload, whether ``sample`` cut the listing short, a reservoir sample of
    objects to move (for ``--probe``), and the opened source store.
    """
    src_loc, dst_loc = parse(src_uri), parse(dst_uri)
    check_overlap(src_loc, dst_loc)
    src = open_store(src_loc, endpoint=src_endpoint)
    dst = open_store(dst_loc, endpoint=dst_endpoint)
    src.check_source()
    dst.check()
    keep = KeyFilter(include, exclude)
    dst_provider = dst_region.provider
    wl = TransferWorkload(part_size=part_size, dst_provider=dst_provider)
    rng = random.Random(0)
    reservoir: list[ObjectInfo] = []
    truncated = False
    moving = 0
    pairs = merge_join(ordered(filtered(src.list(), keep), src.uri),
                       ordered(filtered(dst.list(), keep), dst.uri))
    for _key, s, d in pairs:
        if d is not None:
            wl.dst_listed += 1
        if s is None:
            continue
        if sample is not None and wl.src_listed >= sample:
            truncated = True
            break
        wl.src_listed += 1
        action = decide(s, d, None, src, dst, False)
        if action == "skip":
            wl.skipped += 1
            continue
        if action == "check":
            wl.to_check += 1
        wl.add(s.size, book.normalize_class(src_region.provider, s.storage_class))
        moving += 1
        if len(reservoir) < PROBE_CANDIDATES:
            reservoir.append(s)
        else:
            j = rng.randrange(moving)
            if j < PROBE_CANDIDATES:
                reservoir[j] = s
    return wl, truncated, reservoir, src


def copy_job_id(src: str, dst: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
                src_endpoint: str | None = None, dst_endpoint: str | None = None) -> str:
    """The id ``cloudshift copy`` with the same arguments will use, so report can match."""
    return object_spec("copy", src, dst, include=include, exclude=exclude,
                       src_endpoint=src_endpoint, dst_endpoint=dst_endpoint).job_id


def plan(src: str, dst: str, *, src_region: str | None = None, dst_region: str | None = None,
         dst_class: str | None = None, deadline: str | float | None = None,
         budget: float | None = None, workers: int | None = None,
         worker_type: str | None = None, link_gbps: float | None = None,
         sample: int | None = None, total_objects: int | None = None, probe: bool = False,
         prices: str | Path | None = None, part_size: int = DEFAULT_PART_SIZE,
         transfers: int = 16, include: Sequence[str] = (), exclude: Sequence[str] = (),
         src_endpoint: str | None = None, dst_endpoint: str | None = None,
         save: bool = False) -> Plan:
    """Plan moving everything under ``src`` that ``copy`` would send to ``dst``.

    Lists both sides (only the first ``sample`` source objects when given, scaled up to
    ``total_objects``), prices every option and returns a :class:`Plan`. With ``probe`` a
    small sample is copied to a scratch prefix under ``dst`` (then removed) to measure this
    machine's real rate. With ``save`` the plan is stored beside the journal of the matching
    ``copy`` job, for ``cloudshift report``.
    """
    book = PriceBook.load(prices)
    notes: list[str] = []
    # Validate every option before the (possibly long) listing.
    _check_plan_options(sample, total_objects, deadline, budget, transfers)
    s = location_region(book, src, src_region, "src", notes)
    d = location_region(book, dst, dst_region, "dst", notes)
    wl, truncated, candidates, src_store = summarize(
        src, dst, book=book, src_region=s, dst_region=d, part_size=part_size, include=include,
        exclude=exclude, src_endpoint=src_endpoint, dst_endpoint=dst_endpoint, sample=sample)
    sampled: dict[str, Any] | None = None
    if truncated:
        wl, sampled = _scale_sample(wl, total_objects, notes)
    if wl.to_check:
        notes.append(f"{wl.to_check} objects exist on both sides without a comparable "
                     "checksum; counted as moving (copy hashes them and may skip some)")
    rate: ProbeRate | None = None
    if probe:
        from cloudshift.cost.probe import probe as run_probe

        rate = run_probe(src_store, dst, candidates, transfers=transfers, part_size=part_size,
                         dst_endpoint=dst_endpoint)
    result = plan_workload(wl, src_region=s, dst_region=d, dst_class=dst_class,
                           deadline=deadline, budget=budget, workers=workers,
                           worker_type=worker_type, link_gbps=link_gbps, book=book,
                           probe=rate, src=src, dst=dst, warnings=notes)
    result.sampled = sampled
    result.job_id = copy_job_id(src, dst, include, exclude, src_endpoint, dst_endpoint)
    if save:
        result.saved_to = str(save_plan(result))
    return result


def _check_plan_options(sample: int | None, total_objects: int | None,
                           deadline: str | float | None, budget: float | None,
                           transfers: int) -> None:
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be at least 1 (got {sample})")
    if total_objects is not None and total_objects < 1:
        raise UsageError(f"--total-objects must be at least 1 (got {total_objects})")
    if deadline is not None:
        _deadline_s(deadline)
    _check_budget(budget)
    if transfers < 1:
        raise UsageError(f"--transfers must be at least 1 (got {transfers})")


def _scale_sample(wl: TransferWorkload, total_objects: int | None, notes: list[str]
                  ) -> tuple[TransferWorkload, dict[str, Any]]:
    """A listing cut short by --sample: scaled up to --total-objects when given, said either way."""
    listed = wl.src_listed
    if not total_objects:
        notes.append(f"listed the first {listed} objects only (--sample); figures cover "
                     f"those alone; pass --total-objects N to scale up")
        return wl, {"listed": listed, "total_objects": None, "factor": 1.0, "scaled": False}
    factor = total_objects / listed
    notes.append(f"listed the first {listed} objects only (--sample) and scaled every "
                 f"count by {factor:.4g} to --total-objects {total_objects}")
    return wl.scaled(factor), {"listed": listed, "total_objects": total_objects,
                               "factor": round(factor, 6), "scaled": True}


def save_plan(result: Plan, folder: Path | None = None) -> Path:
    target = (folder or jobs_root() / (result.job_id or "unnamed")) / PLAN_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result.to_dict(), indent=1), "utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot save the plan to '{target}': {describe(exc)}",
                          hint="set CLOUDSHIFT_HOME to a writable folder, or use --no-save"
                          ) from exc
    return target


def load_plan(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read plan '{path}': {describe(exc)}",
                          hint="write one with `cloudshift plan SRC DST --json > FILE`") from exc
    if not isinstance(data, dict) or data.get("type") != "plan":
        raise ConfigError(f"'{path}' is not a cloudshift plan",
                          hint="write one with `cloudshift plan SRC DST --json > FILE`")
    return data


__all__ = ["Plan", "RunningCost", "TransferOption", "TransferWorkload", "copy_job_id",
           "load_plan", "plan", "plan_workload", "save_plan"]
