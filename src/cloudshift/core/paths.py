"""Where cloudshift keeps its state: job journals, fetched prices."""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    env = os.environ.get("CLOUDSHIFT_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return Path(base) / "cloudshift"


def jobs_root() -> Path:
    return state_home() / "jobs"
