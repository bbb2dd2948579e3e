"""What an assessment answers, as plain typed data: the CLI, JSON and HTML render it
(:mod:`cloudshift.render.assess`, :mod:`cloudshift.render.assess_html`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CRITERIA = ("cost", "performance", "reliability", "security", "availability")
CATEGORIES = ("compute", "storage", "requests", "network", "database")


@dataclass(frozen=True)
class InstanceChoice:
    name: str
    vcpus: float
    memory_gib: float
    gpu: str
    gpu_count: int
    hourly_usd: float  # after the group's pricing (spot price, commitment discount)
    family_year: int | None
    processor: str


@dataclass
class Match:
    """One compute group mapped to an instance type in one region."""

    group: str
    count: int
    need: str  # "4+ vCPU, 16 GiB, 1x A100", as the user wrote it
    chosen: InstanceChoice | None
    runners_up: list[InstanceChoice]
    candidates: int  # how many types meet the need
    monthly_usd: float
    problem: str | None = None


@dataclass(frozen=True)
class CostLine:
    category: str
    item: str
    monthly_usd: float
    detail: str


@dataclass(frozen=True)
class Score:
    criterion: str
    score: float  # 0..100
    evidence: str


@dataclass
class MoveComparison:
    monthly_saving_usd: float | None
    move_cost_usd: float | None
    move_basis: str
    payback_months: float | None
    payback_note: str


@dataclass
class PlatformOption:
    """One provider and region, priced and (when it meets every requirement) scored."""

    provider: str
    region: str
    location: str
    zones: int
    matches: list[Match] = field(default_factory=list)
    lines: list[CostLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # requirements it cannot meet
    sla_percent: float | None = None
    sla_evidence: list[str] = field(default_factory=list)
    certifications: list[str] = field(default_factory=list)
    scores: dict[str, Score] = field(default_factory=dict)
    total: float | None = None
    rank: int | None = None
    move: MoveComparison | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.region}"

    @property
    def eligible(self) -> bool:
        return not self.problems

    @property
    def monthly_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    def by_category(self) -> dict[str, float]:
        out = dict.fromkeys(CATEGORIES, 0.0)
        for line in self.lines:
            out[line.category] += line.monthly_usd
        return out


@dataclass(frozen=True)
class Exclusion:
    """A region that was not priced, and why (residency, no price data, not selected)."""

    provider: str
    region: str
    reason: str


@dataclass
class CurrentPlatform:
    provider: str
    region: str | None
    monthly_usd: float | None
    basis: str


@dataclass
class Assessment:
    workload: str
    weights: dict[str, float]
    options: list[PlatformOption]  # ranked options first, then those that miss a requirement
    excluded: list[Exclusion]
    unmet: list[str]  # provider-level statements of what cannot be met
    notes: list[str]
    current: CurrentPlatform | None
    data: dict[str, str]  # catalogue table -> origin (packaged, the user's file, updated)

    @property
    def ranked(self) -> list[PlatformOption]:
        return [o for o in self.options if o.rank is not None]

    def best_per_provider(self) -> list[PlatformOption]:
        seen: dict[str, PlatformOption] = {}
        for option in self.ranked:
            seen.setdefault(option.provider, option)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for o_dict, option in zip(out["options"], self.options, strict=True):
            o_dict["monthly_usd"] = round(option.monthly_usd, 2)
            o_dict["by_category"] = {k: round(v, 2) for k, v in option.by_category().items()}
            o_dict["eligible"] = option.eligible
        return out
