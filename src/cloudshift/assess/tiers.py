"""The workload file's storage tiers (hot, cool, archive) priced from the catalogue's classes.

Each provider's class for a tier is the one a team would choose for it: regional, locally
redundant, no minimum-size tricks. Reading an offline (archive) class costs its restore as well
as the read, so the restore fees are folded into the tier's read and retrieval prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudshift.catalog.load import Catalog

TIERS = ("hot", "cool", "archive")
TIER_CLASS = {
    "aws": {"hot": "STANDARD", "cool": "STANDARD_IA", "archive": "DEEP_ARCHIVE"},
    "gcp": {"hot": "STANDARD", "cool": "NEARLINE", "archive": "ARCHIVE"},
    "azure": {"hot": "HOT", "cool": "COOL", "archive": "ARCHIVE"},
}


@dataclass(frozen=True, slots=True)
class TierPrices:
    product: str
    gb_month: float
    writes_per_1k: float
    reads_per_1k: float  # a read, plus its restore request where the class is offline
    retrieval_per_gb: float  # retrieval, plus the restore fee where the class is offline


def tier_prices(cat: Catalog, region_key: str, tier: str) -> TierPrices | None:
    """The prices of ``tier`` in the region, or None when the catalogue has none there."""
    provider = region_key.split(":", 1)[0]
    storage_class = TIER_CLASS.get(provider, {}).get(tier)
    rates = cat.storage.get((region_key, storage_class or ""))
    if rates is None:
        return None
    reads, retrieval = rates.read_1k.value, rates.retrieval_gb.value
    if rates.needs_restore:
        reads += rates.restore_1k.value
        retrieval += rates.restore_gb.value
    return TierPrices(rates.product, rates.gb_month.value, rates.write_1k.value, reads,
                      retrieval)
