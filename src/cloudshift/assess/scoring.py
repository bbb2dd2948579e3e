"""Score the options that meet every requirement on five criteria (0-100 each), weight them with
the team's weights and rank. The formulas are explained in docs/assessment.md."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

from cloudshift.assess.regimes import REGIMES
from cloudshift.assess.results import CRITERIA, PlatformOption, Score
from cloudshift.core.errors import UsageError

DEFAULT_WEIGHTS = {"cost": 0.4, "performance": 0.15, "reliability": 0.2, "security": 0.15,
                   "availability": 0.1}
_ALIASES = {"compliance": "security", "security/compliance": "security", "price": "cost",
            "sla": "reliability", "perf": "performance"}
YEAR_PENALTY = 10  # performance points per year a family is older than the newest offered
ZONES_FOR_FULL = 3  # a zone-redundant deployment needs three zones
CHOICE_FOR_FULL = 5  # qualifying types per group at which capacity choice counts as full


def _criterion(name: str) -> str:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in CRITERIA:
        close = difflib.get_close_matches(key, [*CRITERIA, *_ALIASES], n=1)
        raise UsageError(f"unknown criterion '{name}'",
                         hint=(f"did you mean {close[0]}? " if close else "")
                         + "criteria: " + ", ".join(CRITERIA))
    return key


def parse_weights(text: str | None, from_file: Mapping[str, float] | None) -> dict[str, float]:
    """``cost=0.5,performance=0.2`` -> weights summing to 1. Criteria not named weigh 0;
    with neither option nor file weights the defaults apply."""
    raw: dict[str, float] = {}
    if text:
        for part in (p for p in text.split(",") if p.strip()):
            name, sep, value = part.partition("=")
            if not sep:
                raise UsageError(f"--weights: '{part}' has no '='",
                                 hint="write e.g. --weights cost=0.5,reliability=0.3")
            try:
                raw[_criterion(name)] = float(value)
            except ValueError:
                raise UsageError(f"--weights: '{value}' is not a number for {name}",
                                 hint="write e.g. cost=0.5") from None
    elif from_file:
        raw = {_criterion(k): float(v) for k, v in from_file.items()}
    else:
        raw = dict(DEFAULT_WEIGHTS)
    if any(v < 0 for v in raw.values()):
        raise UsageError("weights must not be negative", hint="use 0 to ignore a criterion")
    total = sum(raw.values())
    if total <= 0:
        raise UsageError("all weights are zero, so nothing can be ranked",
                         hint="give at least one criterion a positive weight, e.g. cost=1")
    return {c: raw.get(c, 0.0) / total for c in CRITERIA}


def score_options(options: Sequence[PlatformOption], weights: Mapping[str, float],
                  required_regimes: Sequence[str]) -> None:
    """Fill scores, total and rank of the eligible options (scores are relative to the best)."""
    ok = [o for o in options if o.eligible]
    if not ok:
        return
    cheapest = min(o.monthly_usd for o in ok)
    years = {o.key: _mean_year(o) for o in ok}
    newest = max((y for y in years.values() if y is not None), default=None)
    for o in ok:
        cost = o.monthly_usd
        cost_score = 100.0 if cost <= 0 else 100 * cheapest / cost
        o.scores["cost"] = Score("cost", cost_score, f"${cost:,.2f}/month (cheapest "
                                                     f"${cheapest:,.2f})")

        year = years[o.key]
        if year is None or newest is None:
            o.scores["performance"] = Score("performance", 100.0,
                                            "no compute groups to compare")
        else:
            families = "; ".join(f"{m.group}: {m.chosen.name} ({m.chosen.processor}, "
                                 f"{m.chosen.family_year or '?'})"
                                 for m in o.matches if m.chosen)
            o.scores["performance"] = Score(
                "performance", max(0.0, 100 - YEAR_PENALTY * (newest - year)),
                f"family launch year {year:.1f} vs newest {newest:.1f}: {families}")

        if o.sla_percent is None:
            o.scores["reliability"] = Score("reliability", 0.0, "no composite SLA: "
                                            + "; ".join(o.sla_evidence))
        else:
            o.scores["reliability"] = Score(
                "reliability", reliability_score(o.sla_percent),
                f"composite SLA {o.sla_percent:.3f}% ({nines(o.sla_percent):.2f} nines): "
                + "; ".join(o.sla_evidence))

        if required_regimes:
            held = [r for r in required_regimes if r in o.certifications]
            sec = 100 * len(held) / len(required_regimes)
            basis = f"{len(held)}/{len(required_regimes)} required regimes held"
        else:
            sec = 100 * len(o.certifications) / len(REGIMES)
            basis = f"{len(o.certifications)}/{len(REGIMES)} tracked regimes held"
        o.scores["security"] = Score("security", sec,
                                     f"{basis}: {', '.join(o.certifications) or 'none'}")

        zone_part = min(o.zones, ZONES_FOR_FULL) / ZONES_FOR_FULL
        choice = [min(m.candidates, CHOICE_FOR_FULL) / CHOICE_FOR_FULL for m in o.matches]
        choice_part = sum(choice) / len(choice) if choice else 1.0
        o.scores["availability"] = Score(
            "availability", 100 * (zone_part + choice_part) / 2,
            f"{o.zones} zones; qualifying types: "
            + (", ".join(f"{m.group} {m.candidates}" for m in o.matches) or "n/a"))

        o.total = sum(weights[c] * o.scores[c].score for c in CRITERIA)

    ranked = sorted(ok, key=lambda o: (-(o.total or 0.0), o.monthly_usd, o.key))
    for i, o in enumerate(ranked, 1):
        o.rank = i


def nines(sla_percent: float) -> float:
    """99% -> 2, 99.9% -> 3, 99.99% -> 4: the count of nines, continuous."""
    downtime = max(1 - sla_percent / 100, 1e-9)
    return -math.log10(downtime)


def reliability_score(sla_percent: float) -> float:
    """An absolute scale: 25 points per nine of the composite SLA, four nines or more = 100."""
    return max(0.0, min(100.0, 25 * nines(sla_percent)))


def _mean_year(o: PlatformOption) -> float | None:
    """Launch year of the chosen families, weighted by what each group costs."""
    pairs = [(m.chosen.family_year, m.monthly_usd) for m in o.matches
             if m.chosen and m.chosen.family_year is not None]
    weight = sum(w for _, w in pairs)
    if not pairs:
        return None
    if weight <= 0:
        return sum(y for y, _ in pairs) / len(pairs)
    return sum(y * w for y, w in pairs) / weight
