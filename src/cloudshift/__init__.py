"""cloudshift: move object storage between clouds, resumably, with proof nothing was lost.

>>> import cloudshift
>>> result = cloudshift.copy("s3://shop-assets/images", "gs://shop-assets/images")
>>> result.ok, result.copied, result.levels
"""

from typing import Any

from cloudshift.api import copy, find_job, ls, resume, sync, verify
from cloudshift.errors import CloudshiftError, ConfigError, UsageError
from cloudshift.storage.base import ObjectInfo, ObjectMeta
from cloudshift.transfer.results import (
    Event,
    Failure,
    TransferResult,
    VerifiedObject,
    VerifyResult,
)

__version__ = "0.1.0"

__all__ = [
    "CloudshiftError", "ConfigError", "Event", "Failure", "ObjectInfo", "ObjectMeta", "Plan",
    "TransferResult", "UsageError", "VerifiedObject", "VerifyResult", "__version__", "copy",
    "find_job", "ls", "plan", "resume", "sync", "verify",
]


def __getattr__(name: str) -> Any:
    # The planner loads price tables on import; load it when first asked for.
    if name in ("plan", "Plan"):
        from cloudshift.cost import planner

        return getattr(planner, name)
    raise AttributeError(f"module 'cloudshift' has no attribute {name!r}")
