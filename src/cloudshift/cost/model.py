"""The cost and time model: ``C = C_s + C_d + C_v`` and ``T`` for one way of doing the move.

Pure arithmetic over a :class:`TransferWorkload` (what moves, summarised) and a :class:`PriceBook`;
no listing, no I/O, so the tests can pin hand-computed results for workloads that would be
impossible to create for real (50 million objects).

- ``C_s`` service fees: LIST pages on both sides, one GET per source object, retrieval and
  restore fees of cold classes, and the destination's write requests (multipart parts count).
- ``C_d`` data transfer: egress USD/GB along each leg of the route, with volume tiers.
- ``C_v`` worker machines: hourly price x the transfer time, for every VM on the route.
- ``T``: the slowest of bytes / bandwidth and requests / request rate, plus any restore wait.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from cloudshift.catalog.regions import Region
from cloudshift.cost.prices import GB, Price, PriceBook, Tier

KiB, MiB = 1024, 1024**2
# Skyplane's gateways keep 32 connections per VM; the copy engine's default is 16 transfers.
CONNECTIONS_PER_WORKER = 32
LOCAL_TRANSFERS = 16
# Assumed service time of one small-object request including a cross-region round trip;
# bounds objects/s per connection. A stated model constant, not a measurement (see docs).
REQUEST_SECONDS = 0.1
DEFAULT_LINK_GBPS = 1.0
# AWS, GCP and Azure bill Linux VMs per second with a one-minute minimum.
VM_MIN_BILLED_S = 60.0
LIST_PAGE = 1000  # objects per LIST request on S3, GCS and Azure

SIZE_BUCKETS: tuple[tuple[int, str], ...] = (
    (64 * KiB, "< 64 KiB"), (1 * MiB, "64 KiB - 1 MiB"), (16 * MiB, "1 - 16 MiB"),
    (128 * MiB, "16 - 128 MiB"), (1024 * MiB, "128 MiB - 1 GiB"), (16 * 1024 * MiB,
                                                                 "1 - 16 GiB"),
    (2**62, ">= 16 GiB"))


def writes_for(size: int, part_size: int, dst_provider: str) -> int:
    """Write requests the destination bills for one object: one PUT, or a multipart upload
    (S3: create + parts + complete; GCS resumable / Azure blocks: parts + one final call)."""
    if size <= part_size:
        return 1
    parts = math.ceil(size / part_size)
    return parts + (2 if dst_provider == "aws" else 1)


@dataclass
class ClassTotals:
    objects: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"objects": self.objects, "bytes": self.bytes}


@dataclass
class TransferWorkload:
    """What would move, summarised. Build it with :meth:`add` (or from a listing)."""

    part_size: int
    dst_provider: str
    objects: int = 0
    bytes: int = 0
    write_requests: int = 0
    by_class: dict[str, ClassTotals] = field(default_factory=dict)
    histogram: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in SIZE_BUCKETS])
    src_listed: int = 0
    dst_listed: int = 0
    skipped: int = 0
    to_check: int = 0

    def add(self, size: int, storage_class: str, count: int = 1) -> None:
        self.objects += count
        self.bytes += size * count
        self.write_requests += writes_for(size, self.part_size, self.dst_provider) * count
        totals = self.by_class.setdefault(storage_class, ClassTotals())
        totals.objects += count
        totals.bytes += size * count
        for i, (limit, _) in enumerate(SIZE_BUCKETS):
            if size < limit:
                self.histogram[i][0] += count
                self.histogram[i][1] += size * count
                break

    @classmethod
    def of(cls, items: Iterable[tuple[int, str, int]], *, part_size: int = 16 * MiB,
           dst_provider: str = "gcp", src_listed: int | None = None, dst_listed: int = 0
           ) -> TransferWorkload:
        """From ``(size, storage_class, count)`` groups: a synthetic workload for what-ifs."""
        wl = cls(part_size=part_size, dst_provider=dst_provider, dst_listed=dst_listed)
        for size, storage_class, count in items:
            wl.add(size, storage_class, count)
        wl.src_listed = wl.objects if src_listed is None else src_listed
        return wl

    def scaled(self, factor: float) -> TransferWorkload:
        def s(n: int) -> int:
            return round(n * factor)
        return replace(
            self, objects=s(self.objects), bytes=s(self.bytes),
            write_requests=s(self.write_requests),
            by_class={k: ClassTotals(s(v.objects), s(v.bytes)) for k, v in self.by_class.items()},
            histogram=[[s(c), s(b)] for c, b in self.histogram], src_listed=s(self.src_listed),
            dst_listed=s(self.dst_listed), skipped=s(self.skipped), to_check=s(self.to_check))

    @property
    def gb(self) -> float:
        return self.bytes / GB

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "bytes": self.bytes, "gb": round(self.gb, 3),
                "write_requests": self.write_requests, "part_size": self.part_size,
                "src_listed": self.src_listed, "dst_listed": self.dst_listed,
                "already_identical": self.skipped, "to_check": self.to_check,
                "storage_classes": {k: v.to_dict() for k, v in sorted(self.by_class.items())},
                "histogram": [{"range": label, "objects": c, "bytes": b}
                              for (_, label), (c, b) in zip(SIZE_BUCKETS, self.histogram,
                                                            strict=True)]}


@dataclass(frozen=True, slots=True)
class Line:
    """One row of a cost term: quantity x unit price = usd."""

    what: str
    quantity: float
    unit: str
    price: Price | None
    usd: float

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "quantity": self.quantity, "unit": self.unit,
                "usd": self.usd, "price": self.price.to_dict() if self.price else None}


@dataclass
class Term:
    name: str
    lines: list[Line] = field(default_factory=list)

    @property
    def usd(self) -> float:
        return sum(line.usd for line in self.lines)

    def add(self, what: str, quantity: float, unit: str, price: Price | None, per: float = 1.0
            ) -> None:
        if quantity == 0:
            return
        value = price.value if price is not None else 0.0
        self.lines.append(Line(what, quantity, unit, price, quantity * value / per))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "usd": self.usd,
                "lines": [line.to_dict() for line in self.lines]}


@dataclass
class Restore:
    """Objects in classes that must be restored before they can be read."""

    storage_class: str
    objects: int
    bytes: int
    hours: float
    usd: float

    def to_dict(self) -> dict[str, Any]:
        return {"storage_class": self.storage_class, "objects": self.objects,
                "bytes": self.bytes, "hours": self.hours, "usd": self.usd}


@dataclass
class ServiceFees:
    term: Term
    restores: list[Restore]
    warnings: list[str]

    @property
    def restore_hours(self) -> float:
        return max((r.hours for r in self.restores), default=0.0)


def service_fees(book: PriceBook, wl: TransferWorkload, src: Region, dst: Region, dst_class: str
                 ) -> ServiceFees:
    """``C_s``: the same for every route, since the same requests hit the same two stores."""
    term = Term("C_s")
    warnings: list[str] = []
    restores: list[Restore] = []
    if not src.local:
        std, w = book.storage_prices(src, book.normalize_class(src.provider, None))
        pages = max(1, math.ceil(wl.src_listed / LIST_PAGE))
        term.add(f"LIST {src} ({wl.src_listed} objects listed)", pages, "requests",
                 std.write_1k, per=1000)
        for cls, totals in sorted(wl.by_class.items()):
            sp, w = book.storage_prices(src, cls)
            if w:
                warnings.append(w)
            term.add(f"GET {cls} objects", totals.objects, "requests", sp.read_1k, per=1000)
            term.add(f"retrieval {cls}", totals.bytes / GB, "GB", sp.retrieval_gb)
            if sp.needs_restore:
                before = term.usd
                term.add(f"restore requests {cls}", totals.objects, "requests", sp.restore_1k,
                         per=1000)
                term.add(f"restore {cls}", totals.bytes / GB, "GB", sp.restore_gb)
                restores.append(Restore(cls, totals.objects, totals.bytes,
                                        sp.restore_hours.value, term.usd - before))
    if not dst.local:
        dp, w = book.storage_prices(dst, dst_class)
        if w:
            warnings.append(w)
        pages = max(1, math.ceil(wl.dst_listed / LIST_PAGE))
        term.add(f"LIST {dst} ({wl.dst_listed} objects listed)", pages, "requests",
                 dp.write_1k, per=1000)
        term.add(f"PUT/parts into {dst_class} ({wl.objects} objects)", wl.write_requests,
                 "requests", dp.write_1k, per=1000)
    return ServiceFees(term, restores, warnings)


def tiered(gb: float, tiers: list[Tier]) -> list[tuple[float, Tier]]:
    """Split ``gb`` over volume tiers: ``[(gb in tier, tier), ...]``."""
    out: list[tuple[float, Tier]] = []
    for tier in tiers:
        top = gb if tier.to_gb is None else min(gb, tier.to_gb)
        amount = top - tier.from_gb
        if amount > 0:
            out.append((amount, tier))
    return out


def egress_fees(book: PriceBook, gb: float, route: list[Region]) -> tuple[Term, list[str]]:
    """``C_d`` along every leg of ``route`` (direct: [src, dst]; relay: [src, via, dst])."""
    term = Term("C_d")
    warnings: list[str] = []
    for a, b in itertools.pairwise(route):
        if a.local and b.local:
            continue
        tiers, warn = book.egress_tiers_for(a, b)
        if warn:
            warnings.append(warn)
        if gb <= 0:
            term.lines.append(Line(f"egress {a} -> {b}", 0.0, "GB", tiers[0].price, 0.0))
            continue
        for amount, tier in tiered(gb, tiers):
            label = f"egress {a} -> {b}"
            if len(tiers) > 1:
                label += f" (tier from {tier.from_gb:g} GB)"
            term.add(label, amount, "GB", tier.price)
    return term, warnings


@dataclass
class Timing:
    seconds: float            # transfer time, without the restore wait
    restore_seconds: float
    bytes_per_s: float
    bottleneck: str
    inputs: list[Price]
    warnings: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return self.seconds + self.restore_seconds


def _request_bound(wl: TransferWorkload, conc_rps: float, book: PriceBook, src: Region, dst: Region
                   ) -> tuple[float, str, list[Price]]:
    """Seconds the request rate alone needs, and what bounds it."""
    used: list[Price] = []
    write_rps, write_by = conc_rps, "request concurrency"
    read_rps, read_by = conc_rps, "request concurrency"
    if not dst.local:
        lim = book.limits(dst.provider).write_rps
        used.append(lim)
        if lim.value < write_rps:
            write_rps, write_by = lim.value, f"{dst.provider} write rate limit"
    if not src.local:
        lim = book.limits(src.provider).read_rps
        used.append(lim)
        if lim.value < read_rps:
            read_rps, read_by = lim.value, f"{src.provider} read rate limit"
    t_w = wl.write_requests / write_rps
    t_r = wl.objects / read_rps
    if t_w >= t_r:
        return t_w, f"{write_by} ({write_rps:g} writes/s)", used
    return t_r, f"{read_by} ({read_rps:g} reads/s)", used


def cloud_timing(book: PriceBook, wl: TransferWorkload, route: list[Region], workers: int,
                 worker_types: list[str], restore_hours: float) -> Timing:
    """``T`` for ``workers`` VMs per hop: measured Gbit/s per VM pair x workers, capped by the
    VMs' network, and by the request rates for small objects."""
    measured = [book.throughput_gbps(a, b) for a, b in itertools.pairwise(route)]
    legs = [p for p, _ in measured]
    per_vm = min(p.value for p in legs)
    nic_caps = [g for g in (book.vm_network_gbps(r.provider, t)
                            for r, t in zip(route, worker_types, strict=False)) if g]
    capped_by = f"measured {per_vm:g} Gbit/s per VM"
    if nic_caps and min(nic_caps) < per_vm:
        per_vm = min(nic_caps)
        capped_by = f"VM network {per_vm:g} Gbit/s"
    bw = workers * per_vm * 1e9 / 8
    t_bytes = wl.bytes / bw if bw > 0 else math.inf
    t_req, req_by, used = _request_bound(wl, workers * CONNECTIONS_PER_WORKER / REQUEST_SECONDS,
                                         book, route[0], route[-1])
    if t_bytes >= t_req:
        seconds, why = t_bytes, f"network ({workers} x {capped_by})"
    else:
        seconds, why = t_req, req_by
    return Timing(seconds, restore_hours * 3600, wl.bytes / seconds if seconds else 0.0, why,
                  legs + used, [w for _, w in measured if w])


@dataclass(frozen=True, slots=True)
class ProbeRate:
    """What ``--probe`` measured: seconds per object and bytes per second, from this machine."""

    seconds_per_object: float
    bytes_per_s: float | None  # None: the sample held too few bytes to measure bandwidth
    objects: int
    bytes: int
    elapsed: float
    transfers: int

    def to_dict(self) -> dict[str, Any]:
        return {"seconds_per_object": self.seconds_per_object, "bytes_per_s": self.bytes_per_s,
                "sample_objects": self.objects, "sample_bytes": self.bytes,
                "elapsed_s": round(self.elapsed, 3), "transfers": self.transfers}


def local_timing(book: PriceBook, wl: TransferWorkload, src: Region, dst: Region, link_gbps: float,
                 restore_hours: float, probe: ProbeRate | None = None) -> Timing:
    """``T`` when cloudshift runs on the user's machine: the link (or the probe) bounds it."""
    if probe is not None:
        seconds = wl.objects * probe.seconds_per_object
        why = f"measured by --probe ({probe.seconds_per_object * 1000:.2f} ms/object"
        if probe.bytes_per_s:
            seconds += wl.bytes / probe.bytes_per_s
            why += f", {probe.bytes_per_s / MiB:.1f} MiB/s"
        why += ")"
        t_req, req_by, used = _request_bound(wl, math.inf, book, src, dst)
        if t_req > seconds:
            seconds, why = t_req, req_by
        return Timing(seconds, restore_hours * 3600, wl.bytes / seconds if seconds else 0.0,
                      why, used)
    bw = link_gbps * 1e9 / 8
    t_bytes = wl.bytes / bw
    t_req, req_by, used = _request_bound(wl, LOCAL_TRANSFERS / REQUEST_SECONDS, book, src, dst)
    seconds, why = (t_bytes, f"link {link_gbps:g} Gbit/s") if t_bytes >= t_req else (t_req,
                                                                                      req_by)
    return Timing(seconds, restore_hours * 3600, wl.bytes / seconds if seconds else 0.0, why,
                  used)


def vm_fees(book: PriceBook, sites: list[tuple[Region, str]], workers: int, seconds: float
            ) -> tuple[Term, list[str]]:
    """``C_v``: every VM on the route bills for the transfer time (not the restore wait)."""
    term = Term("C_v")
    warnings: list[str] = []
    for region, worker_type in sites:
        price, warn = book.vm_price(region, worker_type)
        if warn:
            warnings.append(warn)
        term.add(f"{workers} x {worker_type} in {region}",
                 workers * max(seconds, VM_MIN_BILLED_S) / 3600, "VM-hours", price)
    return term, warnings
