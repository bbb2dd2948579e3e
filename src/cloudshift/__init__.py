"""cloudshift: move object storage between clouds, resumably, with proof nothing was lost.

>>> import cloudshift
>>> result = cloudshift.copy("s3://shop-assets/images", "gs://shop-assets/images")
>>> result.ok, result.copied, result.levels
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudshift.api import copy, find_job, ls, resume, sync, verify
    from cloudshift.core.errors import CloudshiftError, ConfigError, UsageError
    from cloudshift.cost.planner import Plan, plan
    from cloudshift.jobs.events import Event
    from cloudshift.storage.base import ObjectInfo, ObjectMeta
    from cloudshift.transfer.results import (
        Failure,
        TransferResult,
        VerifiedObject,
        VerifyResult,
    )

# Loaded on first use: `cloudshift db ...` and `cloudshift plan` never need the object
# mover's engine and SDK adapters (about 0.15 s of imports per command).
_WHERE = {
    **dict.fromkeys(("copy", "find_job", "ls", "resume", "sync", "verify"), "cloudshift.api"),
    **dict.fromkeys(("plan", "Plan"), "cloudshift.cost.planner"),
    **dict.fromkeys(("CloudshiftError", "ConfigError", "UsageError"), "cloudshift.core.errors"),
    **dict.fromkeys(("ObjectInfo", "ObjectMeta"), "cloudshift.storage.base"),
    "Event": "cloudshift.jobs.events",
    **dict.fromkeys(("Failure", "TransferResult", "VerifiedObject", "VerifyResult"),
                    "cloudshift.transfer.results"),
}

__version__ = "0.1.0"

__all__ = [
    "CloudshiftError", "ConfigError", "Event", "Failure", "ObjectInfo", "ObjectMeta", "Plan",
    "TransferResult", "UsageError", "VerifiedObject", "VerifyResult", "__version__", "copy",
    "find_job", "ls", "plan", "resume", "sync", "verify",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudshift' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
