"""The workload file: what a team runs, read from YAML and checked with line-numbered errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from cloudshift.core.errors import ConfigError


@dataclass(frozen=True)
class Need:
    """A resource request: ``4`` means exactly 4, ``"4+"`` means at least 4 (as SkyPilot)."""

    amount: float
    at_least: bool

    def met_by(self, offered: float) -> bool:
        return offered >= self.amount - 1e-9 if self.at_least else abs(offered - self.amount) < 1e-9

    def __str__(self) -> str:
        return f"{self.amount:g}{'+' if self.at_least else ''}"


_NEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(\+?)\s*$")


def _parse_need(value: Any) -> Need:
    if isinstance(value, Need):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number like 4 (exactly) or '4+' (at least)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return Need(float(value), False)
    if isinstance(value, str):
        m = _NEED.match(value)
        if m:
            return Need(float(m.group(1)), m.group(2) == "+")
    raise ValueError(f"'{value}' is not a size: write 4 (exactly 4) or '4+' (at least 4)")


NeedField = Annotated[Need, BeforeValidator(_parse_need)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gpu(_Strict):
    model: str = Field(min_length=1, description="accelerator name, e.g. A100, H100, L4, T4")
    count: NeedField = Need(1, False)


class ComputeGroup(_Strict):
    name: str = Field(min_length=1)
    count: int = Field(default=1, ge=1)
    vcpus: NeedField
    memory_gib: NeedField
    gpu: Gpu | None = None
    arch: Literal["x86_64", "arm64", "any"] = "x86_64"
    hours_per_month: float = Field(default=730, gt=0, le=744)
    pricing: Literal["on_demand", "spot", "commit_1y", "commit_3y"] = "on_demand"
    burstable: bool = False


class StorageClass(_Strict):
    gb: float = Field(default=0, ge=0)
    writes_per_month: float = Field(default=0, ge=0)
    reads_per_month: float = Field(default=0, ge=0)
    retrieved_gb_per_month: float = Field(default=0, ge=0)


class Storage(_Strict):
    hot: StorageClass = StorageClass()
    cool: StorageClass = StorageClass()
    archive: StorageClass = StorageClass()

    @property
    def total_gb(self) -> float:
        return self.hot.gb + self.cool.gb + self.archive.gb


class Network(_Strict):
    internet_egress_gb: float = Field(default=0, ge=0)
    inter_region_egress_gb: float = Field(default=0, ge=0)


class Database(_Strict):
    name: str = Field(min_length=1)
    engine: Literal["postgres", "mysql"]
    vcpus: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    storage_gb: float = Field(default=0, ge=0)
    high_availability: bool = False

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_alias(cls, value: Any) -> Any:
        aliases = {"postgresql": "postgres", "pg": "postgres", "mariadb": "mysql"}
        return aliases.get(str(value).lower(), str(value).lower())


class Requirements(_Strict):
    regions: list[str] = Field(default_factory=list)
    residency: list[str] = Field(default_factory=list)
    compliance: list[str] = Field(default_factory=list)
    min_sla: float | None = Field(default=None, gt=0, le=100)


class Current(_Strict):
    provider: Literal["aws", "gcp", "azure", "on_prem"]
    region: str | None = None
    monthly_cost_usd: float | None = Field(default=None, ge=0)


class WorkloadSpec(_Strict):
    """A workload file: what a team runs (compute groups, storage, network, databases), what
    it requires and where it runs today."""

    name: str = "workload"
    compute: list[ComputeGroup] = Field(default_factory=list)
    storage: Storage = Storage()
    network: Network = Network()
    databases: list[Database] = Field(default_factory=list)
    requirements: Requirements = Requirements()
    current: Current | None = None
    weights: dict[str, float] | None = None
    _source: str = PrivateAttr("workload")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    def where(self, *path: str | int) -> str:
        """``file:line`` of a key path, for errors found after validation (e.g. a region)."""
        line = self._lines.get(tuple(path))
        return f"{self._source}:{line}" if line else self._source

    @field_validator("compute", "databases")
    @classmethod
    def _unique_names(cls, items: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for item in items:
            if item.name in seen:
                raise ValueError(f"the name '{item.name}' is used twice; names must be unique")
            seen.add(item.name)
        return items


# --- YAML with line numbers -------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _to_python(loader: yaml.SafeLoader, node: yaml.Node, path: Path_,
               lines: dict[Path_, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str | int | float):
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: a key must be a "
                                  "plain word", hint="write key: value")
            if key in out:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: '{key}' appears "
                                  "twice in the same block", hint="keep one of them")
            out[key] = _to_python(loader, value_node, (*path, str(key)), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, child, (*path, i), lines, source)
                for i, child in enumerate(node.value)]
    return loader.construct_object(node)


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """YAML text -> plain Python data plus the line of every key path."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        data = None if node is None else _to_python(loader, node, (), lines, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {exc.problem or exc.context}",
                          hint="check indentation and quoting") from None
    finally:
        loader.dispose()
    return data, lines


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_workload(path: str | Path) -> WorkloadSpec:
    """Read and check a workload file; every mistake is reported with its line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read workload file {p}: {exc.strerror}",
                          hint="give the path of a workload YAML file") from None
    return workload_from_text(text, str(p))


def workload_from_text(text: str, source: str = "workload.yaml") -> WorkloadSpec:
    data, lines = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the workload must be a YAML mapping (compute:, storage:, "
                          "...)", hint="see examples/webshop.yaml")
    try:
        workload = WorkloadSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            # The deepest path that exists in the file gives the line of the mistake.
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check its spelling and indentation)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            problems.append(f"{source}:{line}: {_dotted(loc)}: {msg}")
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError("; ".join(problems[:3]) + more) from None
    workload._source = source
    workload._lines = lines
    return workload
