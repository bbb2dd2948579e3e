"""Platform assessment: price a workload on AWS, Google Cloud and Azure, map every machine to an
instance type, score and rank the options (``cloudshift assess``). The prices, regions and
instance types come from the one catalogue (:mod:`cloudshift.catalog`) the planner reads too.

The names below load on first use (PEP 562), so the CLI's other commands do not pay for
pydantic and the chart library at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "assess": "cloudshift.assess.assessment",
    "Catalog": "cloudshift.catalog.load",
    "load_catalog": "cloudshift.catalog.load",
    "Assessment": "cloudshift.assess.results",
    "PlatformOption": "cloudshift.assess.results",
    "WorkloadSpec": "cloudshift.assess.workload",
    "load_workload": "cloudshift.assess.workload",
    "workload_from_text": "cloudshift.assess.workload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudshift.assess' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
