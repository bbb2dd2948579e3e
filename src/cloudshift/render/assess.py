"""``cloudshift assess`` as terminal tables: ranking, instance mapping, what cannot be met."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table

from cloudshift.assess.results import CRITERIA, Assessment, InstanceChoice, PlatformOption
from cloudshift.catalog.regions import PROVIDER_NAMES
from cloudshift.core.units import money


def saving_text(option: PlatformOption) -> str:
    mv = option.move
    if mv is None:
        return ""
    if mv.move_basis == "already there":
        return "today"
    return money(mv.monthly_saving_usd)


def render_assessment(result: Assessment, out: TextIO, *, details: bool = False) -> None:
    console = Console(file=out, highlight=False, width=max(Console(file=out).width, 132))
    ranked = result.ranked
    _print_heading(console, result, ranked)
    if ranked:
        console.print(_ranking_table(result, ranked))
        mapping = _mapping_table(result)
        if mapping.row_count:
            console.print(mapping)
    else:
        console.print("[bold red]No option meets every requirement.[/]")
    if details:
        _print_details(console, ranked)
    _print_cannot_be_met(console, result)
    _print_not_priced(console, result)
    _print_notes(console, result)


def _print_heading(console: Console, result: Assessment, ranked: list[PlatformOption]) -> None:
    console.print(f"[bold]Assessment of '{result.workload}'[/]: {len(result.options)} option(s) "
                  f"priced, {len(ranked)} meet every requirement and are ranked")
    console.print("Weights: " + ", ".join(f"{c} {result.weights[c]:.2f}" for c in CRITERIA))
    if result.current is not None:
        cur = result.current
        where = f"{cur.provider} {cur.region}" if cur.region else cur.provider
        console.print(f"Today: {where} at "
                      f"{money(cur.monthly_usd)}/month ({cur.basis})")


def _ranking_table(result: Assessment, ranked: list[PlatformOption]) -> Table:
    table = Table(title="Ranking", title_justify="left")
    for col, kw in (("#", {"justify": "right"}), ("provider", {}), ("region", {}),
                    ("$/month", {"justify": "right"})):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for c in CRITERIA:
        table.add_column(c[:5] if c != "security" else "secur", justify="right")
    table.add_column("score", justify="right", style="bold")
    # The move columns only mean something against a platform the workload runs on today.
    if result.current is not None:
        table.add_column("saving/mo", justify="right")
        table.add_column("move", justify="right")
        table.add_column("payback")
    for o in ranked:
        row = [str(o.rank), PROVIDER_NAMES[o.provider], o.region,
               f"{o.monthly_usd:,.2f}",
               *[f"{o.scores[c].score:.0f}" for c in CRITERIA], f"{o.total or 0:.1f}"]
        if result.current is not None and o.move is not None:
            row += [saving_text(o), money(o.move.move_cost_usd), o.move.payback_note]
        table.add_row(*row)
    return table


def _instance_text(chosen: InstanceChoice) -> str:
    return (f"{chosen.name} ({chosen.vcpus:g} vCPU, {chosen.memory_gib:g} GiB"
            + (f", {chosen.gpu_count}x {chosen.gpu}" if chosen.gpu else "") + ")")


def _mapping_table(result: Assessment) -> Table:
    mapping = Table(title="Instance mapping (best region per provider)", title_justify="left")
    for col in ("provider", "region", "group", "need", "type", "$/h", "$/month",
                "runners-up"):
        mapping.add_column(col)
    for o in result.best_per_provider():
        for m in o.matches:
            if m.chosen is None:
                continue
            mapping.add_row(o.provider, o.region, m.group, m.need, _instance_text(m.chosen),
                            f"{m.chosen.hourly_usd:.4f}", f"{m.monthly_usd:,.2f}",
                            ", ".join(f"{r.name} ${r.hourly_usd:.4f}" for r in m.runners_up))
    return mapping


def _print_details(console: Console, ranked: list[PlatformOption]) -> None:
    for o in ranked:
        console.print(f"\n[bold]{o.rank}. {o.key}[/] ${o.monthly_usd:,.2f}/month")
        for line in o.lines:
            console.print(f"  {line.category:9} {line.item:22} ${line.monthly_usd:>10,.2f}"
                          f"  {line.detail}")
        for c in CRITERIA:
            console.print(f"  {c:12} {o.scores[c].score:5.1f}  {o.scores[c].evidence}")
        if o.move is not None:
            console.print(f"  move cost: {money(o.move.move_cost_usd)} ({o.move.move_basis})")


def _print_cannot_be_met(console: Console, result: Assessment) -> None:
    rejected = [o for o in result.options if not o.eligible]
    if not (rejected or result.unmet):
        return
    console.print("\n[bold]Cannot be met[/]")
    for text in result.unmet:
        console.print(f"  - {text}")
    for o in rejected:
        for problem in o.problems:
            console.print(f"  - {o.key}: {problem}")


def _print_not_priced(console: Console, result: Assessment) -> None:
    if not result.excluded:
        return
    console.print("\n[bold]Regions not priced[/]")
    by_reason: dict[tuple[str, str], list[str]] = {}
    for ex in result.excluded:
        # Residency reasons name each region's country; group them without it.
        reason = ex.reason.split(" (")[0] if ex.reason.startswith("outside") else ex.reason
        by_reason.setdefault((ex.provider, reason), []).append(ex.region)
    for (provider, reason), names in by_reason.items():
        console.print(f"  - {provider}: {', '.join(names)}: {reason}")


def _print_notes(console: Console, result: Assessment) -> None:
    for note in result.notes:
        console.print(f"note: {note}")
    overridden = {k: v for k, v in result.data.items() if v != "packaged"}
    if overridden:
        console.print("data overridden: " + ", ".join(f"{k} <- {v}" for k, v in
                                                      overridden.items()))
