"""The compliance regimes the assessment tracks, and how users' spellings of them are read."""

from __future__ import annotations

import re

# Canonical compliance regime names; user spellings are matched after squeezing out
# everything but letters and digits ("PCI-DSS", "pci dss" and "PCIDSS" are one regime).
REGIMES = ("HIPAA", "PCI DSS", "GDPR", "ISO 27001", "SOC 2", "FedRAMP")


def squeeze(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def canonical_regime(text: str) -> str | None:
    return next((r for r in REGIMES if squeeze(r) == squeeze(text)), None)
