"""``JobSpec``: what a job is, so that running it again finds its journal and resumes.

``params`` name the job: they are hashed into its id (``copy-3f2a9c1d0b7e``), so the same
source, destination and selection always land in the same journal. ``options`` do not name
it, but change what it produces (a database copied without GRANTs, tables split at another
size): a run that finds a journal compares them and refuses, saying which option differs,
rather than silently carrying on with the old ones.

``ident``, when set, is hashed in place of ``params``: a kind whose ids were made another way
(cloudshift 0.1 named a db job after the list of its two DSNs) keeps finding its journals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    kind: str                                   # a registered kind: "objects", "db", ...
    params: Mapping[str, Any]                   # JSON values that name the job
    options: Mapping[str, Any] = field(default_factory=dict)  # compared on resume
    prefix: str = ""                            # the job id's prefix (default: the kind)
    ident: Any = None                           # what is hashed into the id; default: params

    @property
    def job_id(self) -> str:
        named = self.params if self.ident is None else self.ident
        digest = hashlib.sha256(json.dumps(_plain(named), sort_keys=True).encode())
        return f"{self.prefix or self.kind}-{digest.hexdigest()[:12]}"

    def differences(self, recorded: JobSpec) -> list[str]:
        """The options whose value differs from those the job was started with, as
        ``--name: was X, now Y`` (option names are their command-line flags)."""
        out = []
        for name in sorted(set(self.options) | set(recorded.options)):
            then, now = recorded.options.get(name), self.options.get(name)
            if _plain(then) != _plain(now):
                out.append(f"{name}: was {_show(then)}, now {_show(now)}")
        return out

    def to_json(self) -> str:
        out = {"kind": self.kind, "prefix": self.prefix, "params": _plain(self.params),
               "options": _plain(self.options)}
        if self.ident is not None:
            out["ident"] = _plain(self.ident)
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        raw = json.loads(text)
        if "kind" not in raw:
            return _legacy(raw)
        return cls(kind=raw["kind"], params=raw.get("params", {}),
                   options=raw.get("options", {}), prefix=raw.get("prefix", ""),
                   ident=raw.get("ident"))


def _legacy(raw: dict[str, Any]) -> JobSpec:
    """Specs written by cloudshift 0.1: an object job's flat fields, or a db job's DSNs."""
    if "op" in raw:
        params = {k: v for k, v in raw.items() if k != "options"}
        return JobSpec("objects", params, prefix=str(raw["op"]))
    return JobSpec("db", {"src": raw.get("src"), "dst": raw.get("dst")},
                   {"--follow": raw.get("follow", False)}, ident=[raw.get("src"), raw.get("dst")])


def _plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts: the form JSON gives back, so both compare."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return json.dumps(_plain(value)) if isinstance(value, list | tuple | Mapping) else str(value)
