"""Regions: the one ``Region`` type of the house, and how ``provider:region`` text is read."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from cloudshift.catalog.sources import Source
from cloudshift.core.errors import UsageError

PROVIDERS = ("aws", "gcp", "azure")
PROVIDER_NAMES = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
# The region whose list prices each provider's shipped storage prices are; other regions
# without a price of their own are priced as this one, and say so.
REFERENCE_REGION = {"aws": "aws:us-east-1", "gcp": "gcp:us-central1", "azure": "azure:eastus"}


@dataclass(frozen=True, slots=True)
class Region:
    """A provider's region. Two regions are equal when provider and code are: the description
    (from ``regions.csv``) is known for some regions only and does not change which one it is."""

    provider: str  # aws | gcp | azure | local
    code: str      # us-east-1; "" for local
    location: str = field(default="", compare=False)   # "N. Virginia"; "" when not described
    country: str = field(default="", compare=False)    # ISO 3166 alpha-2, upper case
    continent: str = field(default="", compare=False)  # north-america, europe, asia, ...
    zones: int = field(default=0, compare=False)       # availability zones; 0 when unknown
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """``provider:code``, the way users and the price tables write a region."""
        return f"{self.provider}:{self.code}" if self.code else self.provider

    def __str__(self) -> str:
        return self.key

    @property
    def local(self) -> bool:
        return self.provider == "local"

    @property
    def described(self) -> bool:
        return bool(self.location)


LOCAL = Region("local", "")


def split_key(key: str) -> tuple[str, str]:
    provider, _, code = key.partition(":")
    return provider, code


def parse_region(text: str, known: Collection[str]) -> tuple[str, str]:
    """``provider:region`` (or ``local``) -> (provider, code), checked against ``known`` keys;
    an unknown name fails with the closest known ones."""
    raw = text.strip()
    provider, sep, name = raw.partition(":")
    provider = provider.lower()
    if provider == "local" and not name:
        return "local", ""
    if not sep or provider not in PROVIDERS:
        raise UsageError(f"unknown provider in region '{text}'",
                         hint="write provider:region, provider one of aws, gcp, azure, "
                              "e.g. aws:us-east-1, gcp:us-central1, azure:eastus")
    full = f"{provider}:{name.lower()}"
    if full not in known:
        close = difflib.get_close_matches(full, sorted(known), n=4, cutoff=0.6)
        hint = ("did you mean " + ", ".join(close)) if close else (
            f"known {provider} regions: " + ", ".join(sorted(
                r for r in known if r.startswith(provider + ":"))[:12]) + ", ...")
        raise UsageError(f"unknown region '{text}'", hint=hint)
    return provider, name.lower()
