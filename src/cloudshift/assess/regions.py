"""Which provider regions to price: the ones named, narrowed by data residency, minus the ones
the price data does not cover (said plainly, never guessed)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from cloudshift.assess.results import Exclusion
from cloudshift.catalog.load import Catalog
from cloudshift.catalog.regions import PROVIDERS, Region
from cloudshift.core.errors import ConfigError, UsageError

EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})
EEA_COUNTRIES = EU_COUNTRIES | {"IS", "LI", "NO"}
CONTINENTS = ("north-america", "south-america", "europe", "asia", "oceania", "africa")
RESIDENCY_HELP = ("EU, EEA, a continent (" + ", ".join(CONTINENTS) +
                  ") or a two-letter country code (US, DE, ...)")


def priced_regions(cat: Catalog, provider: str) -> list[str]:
    """Codes of the provider's regions with instance prices: the ones an option can be."""
    return sorted(key.split(":", 1)[1] for key in cat.instances
                  if key.startswith(provider + ":"))


def region_names(cat: Catalog) -> list[str]:
    """Every region a workload may name: described in regions.csv, or priced."""
    return sorted(set(cat.regions) | set(cat.instances))


def parse_providers(text: str | None) -> list[str]:
    if not text:
        return list(PROVIDERS)
    out = []
    for raw in (p.strip().lower() for p in text.split(",") if p.strip()):
        name = {"google": "gcp", "gcloud": "gcp", "amazon": "aws", "microsoft": "azure"}.get(raw,
                                                                                         raw)
        if name not in PROVIDERS:
            close = difflib.get_close_matches(name, PROVIDERS, n=1)
            raise UsageError(f"unknown provider '{raw}'",
                             hint=f"did you mean {close[0]}?" if close else
                             "use aws, gcp or azure")
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError("--providers is empty", hint="e.g. --providers aws,gcp")
    return out


def _residency_match(region: Region, term: str) -> bool:
    t = term.strip()
    up, low = t.upper(), t.lower().replace(" ", "-")
    if up == "EU":
        return region.country in EU_COUNTRIES
    if up == "EEA":
        return region.country in EEA_COUNTRIES
    if low in CONTINENTS:
        return region.continent == low
    return region.country == up


def check_residency(terms: Sequence[str], where: str) -> None:
    for term in terms:
        t = term.strip()
        if t.upper() in ("EU", "EEA") or t.lower().replace(" ", "-") in CONTINENTS:
            continue
        if len(t) == 2 and t.isalpha():
            continue
        raise ConfigError(f"{where}: residency '{term}' is not an area",
                          hint=f"use {RESIDENCY_HELP}")


def resolve_region(cat: Catalog, text: str, providers: Sequence[str], where: str) -> Region:
    """'aws:eu-west-1' or a bare 'eu-west-1' -> the Region, or an error naming close names."""
    name = text.strip()
    provider, sep, bare = name.partition(":")
    keys = region_names(cat)
    if sep:
        hits = [k for k in keys if k == f"{provider.lower()}:{bare}"]
    else:
        hits = [k for k in keys if k.split(":", 1)[1] == name]
    if not hits:
        pool = keys if sep else sorted({k.split(":", 1)[1] for k in keys})
        close = difflib.get_close_matches(name, pool, n=4, cutoff=0.5)
        hint = ("did you mean " + ", ".join(close) + "?") if close else \
            "known regions: " + ", ".join(pool[:12]) + ", ..."
        raise ConfigError(f"{where}: there is no region named '{name}'", hint=hint)
    if len(hits) > 1:
        raise ConfigError(f"{where}: '{name}' is a region of several providers",
                          hint="write it as " + " or ".join(hits))
    region = cat.regions.get(hits[0])
    if region is None:
        # A priced region missing from regions.csv: its zones and country are unknown.
        raise ConfigError(f"{where}: region {hits[0]} has prices but no entry in regions.csv",
                          hint="add it (provider,region,location,country,continent,zones)")
    return region


def select_regions(cat: Catalog, providers: Sequence[str], named: Sequence[Region],
                   residency: Sequence[str]) -> tuple[list[Region], list[Exclusion], list[str]]:
    """-> regions to price, regions left out with the reason, provider-level statements."""
    chosen: list[Region] = []
    excluded: list[Exclusion] = []
    unmet: list[str] = []
    area = ", ".join(residency)
    for provider in providers:
        if named:
            pool = [r for r in named if r.provider == provider]
            if not pool:
                continue
        else:
            pool = sorted((r for r in cat.regions.values() if r.provider == provider),
                          key=lambda r: r.code)
        outside = [r for r in pool if residency and not any(_residency_match(r, t)
                                                            for t in residency)]
        inside = [r for r in pool if r not in outside]
        unpriced = [r for r in inside if r.key not in cat.instances]
        priced = [r for r in inside if r.key in cat.instances]
        for r in outside:
            excluded.append(Exclusion(provider, r.code, f"outside the residency area {area} "
                                                       f"({r.location}, {r.country})"))
        if named or residency:
            for r in unpriced:
                excluded.append(Exclusion(
                    provider, r.code, "no price data for this region (instance prices cover "
                    + ", ".join(priced_regions(cat, provider)) + ")"))
        chosen.extend(priced)
        if not priced:
            parts = []
            if outside:
                parts.append(f"{', '.join(r.code for r in outside)} "
                             f"{'is' if len(outside) == 1 else 'are'} outside {area}")
            if unpriced:
                parts.append(f"{', '.join(r.code for r in unpriced)} "
                             f"{'has' if len(unpriced) == 1 else 'have'} no price data")
            unmet.append(f"{provider}: no region can be priced: " + "; ".join(parts))
    return chosen, excluded, unmet
