"""Map a compute group to the cheapest instance type that meets it, as SkyPilot's optimizer does:
filter the catalogue by vCPUs, memory, GPU and architecture (exactly, or "at least" for ``N+``),
then order by hourly price under the group's pricing (on-demand, spot or a commitment)."""

from __future__ import annotations

from cloudshift.assess.regimes import squeeze
from cloudshift.assess.results import InstanceChoice, Match
from cloudshift.assess.workload import ComputeGroup
from cloudshift.catalog.load import Catalog
from cloudshift.catalog.records import InstanceType

RUNNERS_UP = 2

# Spellings users write for the same accelerator as the catalogue names it.
_GPU_ALIASES = {"a10040gb": "a100", "h10080gb": "h100", "a10g24gb": "a10g", "v10016gb": "v100"}

# GCP attaches these to n1 machines; vms.csv has no n1 base prices (catalog/data/PROVENANCE.md).
_GCP_N1_GPUS = {"t4", "v100", "p100", "p4"}


def gpu_key(model: str) -> str:
    key = squeeze(model)
    return _GPU_ALIASES.get(key, key)


def describe_need(group: ComputeGroup) -> str:
    text = f"{group.vcpus} vCPU, {group.memory_gib} GiB"
    if group.gpu is not None:
        text += f", {group.gpu.count}x {group.gpu.model}"
    if group.arch != "x86_64":
        text += f", {group.arch}"
    return text


def hourly_price(cat: Catalog, inst: InstanceType, pricing: str) -> float | None:
    if pricing == "spot":
        return inst.spot_hour
    if pricing in ("commit_1y", "commit_3y"):
        commitment = cat.commitments.get((inst.provider, pricing))
        return None if commitment is None else inst.price_hour * (1 - commitment.discount)
    return inst.price_hour


def _year(cat: Catalog, inst: InstanceType) -> int:
    fam = cat.family(inst)
    return fam.year if fam else 0


def _choice(cat: Catalog, inst: InstanceType, hourly: float) -> InstanceChoice:
    fam = cat.family(inst)
    return InstanceChoice(inst.name, inst.vcpus, inst.memory_gib, inst.gpu, inst.gpu_count,
                          hourly, fam.year if fam else None, fam.processor if fam else "unknown")


def _fits(cat: Catalog, inst: InstanceType, group: ComputeGroup) -> bool:
    if group.arch != "any" and inst.arch != group.arch:
        return False
    fam = cat.family(inst)
    if fam is not None and fam.burstable and not group.burstable:
        return False
    if not (group.vcpus.met_by(inst.vcpus) and group.memory_gib.met_by(inst.memory_gib)):
        return False
    if group.gpu is None:
        return not inst.gpu  # a GPU machine is never the answer to a CPU need
    return gpu_key(inst.gpu) == gpu_key(group.gpu.model) and group.gpu.count.met_by(inst.gpu_count)


def match_group(cat: Catalog, provider: str, region: str, group: ComputeGroup) -> Match:
    types = cat.instances.get(f"{provider}:{region}", ())
    priced: list[tuple[float, InstanceType]] = []
    unpriced = 0
    for inst in types:
        if not _fits(cat, inst, group):
            continue
        hourly = hourly_price(cat, inst, group.pricing)
        if hourly is None:
            unpriced += 1
            continue
        priced.append((hourly, inst))
    # On a price tie prefer the smaller machine, then the newer family.
    priced.sort(key=lambda pair: (pair[0], pair[1].vcpus, pair[1].memory_gib,
                                  -_year(cat, pair[1]), pair[1].name))
    need = describe_need(group)
    if not priced:
        return Match(group.name, group.count, need, None, [], 0, 0.0,
                     _why_unmet(cat, provider, region, group, unpriced))
    choices = [_choice(cat, inst, hourly) for hourly, inst in priced[: 1 + RUNNERS_UP]]
    monthly = group.count * choices[0].hourly_usd * group.hours_per_month
    return Match(group.name, group.count, need, choices[0], choices[1:], len(priced), monthly)


def _why_unmet(cat: Catalog, provider: str, region: str, group: ComputeGroup,
               unpriced: int) -> str:
    """Say plainly why no type fits, naming what the region does offer."""
    types = cat.instances.get(f"{provider}:{region}", ())
    where = f"{provider} {region}"
    if unpriced:
        what = "spot price" if group.pricing == "spot" else f"{group.pricing} discount"
        return (f"{group.name}: {unpriced} type(s) in {where} fit {describe_need(group)} but the "
                f"data has no {what} for them")
    if group.gpu is not None:
        wanted = gpu_key(group.gpu.model)
        offered = sorted({t.gpu for t in types if t.gpu})
        if wanted not in {gpu_key(g) for g in offered}:
            elsewhere = sorted({key.split(":", 1)[1] for key, ts in cat.instances.items()
                                if key.startswith(provider + ":")
                                and any(gpu_key(t.gpu) == wanted for t in ts)})
            text = (f"{group.name}: GPU {group.gpu.model} is not offered by {provider} in "
                    f"{region} (there: {', '.join(offered) or 'no GPUs'})")
            if elsewhere:
                text += f"; {provider} offers it in {', '.join(elsewhere)}"
            if provider == "gcp" and wanted in _GCP_N1_GPUS:
                gpu_price = cat.gcp_gpus.get((region, group.gpu.model.upper(), 1))
                text += ("; GCP attaches it to n1 machines, whose base price is not in the "
                         "data")
                if gpu_price is not None:
                    text += f" (the GPU alone lists at ${gpu_price.price_hour:.2f}/h)"
            return text
    arch_types = [t for t in types if group.arch in ("any", t.arch)]
    if not arch_types:
        return f"{group.name}: the data has no {group.arch} types for {where}"
    largest = max(arch_types, key=lambda t: (t.vcpus, t.memory_gib))
    return (f"{group.name}: no instance type in {where} has {describe_need(group)}"
            f"{'' if group.burstable else ' (burstable types excluded)'}; the largest is "
            f"{largest.name} with {largest.vcpus:g} vCPU, {largest.memory_gib:g} GiB")
