"""``cloudshift assess --html``: the assessment as one self-contained HTML page for a manager:
a summary sentence, charts (inline SVG drawn by pygal, no script and nothing fetched), the
ranking, the evidence behind each score, what cannot be met and where every figure comes
from."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]

from cloudshift.assess.results import CATEGORIES, CRITERIA, Assessment, PlatformOption
from cloudshift.catalog.regions import PROVIDER_NAMES
from cloudshift.catalog.tables import TABLES
from cloudshift.core.files import write_atomic
from cloudshift.core.units import money
from cloudshift.render.assess import saving_text

_STYLE = Style(background="white", plot_background="white", foreground="#222",
               foreground_strong="#111", foreground_subtle="#666", font_family="sans-serif",
               colors=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"),
               label_font_size=13, major_label_font_size=13, value_font_size=12,
               legend_font_size=13, title_font_size=16)

def _drop_scripts(root: Any) -> Any:
    """pygal always embeds its configuration as a <script>; without its tooltip library
    (``js=[]``) that script does nothing, and the report is meant to run no code at all."""
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


_COMMON: dict[str, Any] = {
    "style": _STYLE, "js": [], "disable_xml_declaration": True, "explicit_size": True,
    "legend_at_bottom": True, "print_values": True, "margin": 10,
}


def _label(o: PlatformOption) -> str:
    return f"{PROVIDER_NAMES[o.provider]} {o.region}"


def cost_chart(options: list[PlatformOption]) -> str:
    # Label only segments tall enough to hold their label.
    floor = 0.06 * max((o.monthly_usd for o in options), default=0.0)
    chart = pygal.StackedBar(width=820, height=400, title="Monthly cost by category (USD)",
                             value_formatter=lambda v: money(v) if v >= floor else "",
                             truncate_label=-1, **_COMMON)
    chart.x_labels = [_label(o) for o in options]
    chart.add_xml_filter(_drop_scripts)
    for category in CATEGORIES:
        values = [o.by_category()[category] for o in options]
        if any(values):
            chart.add(category, values)
    return str(chart.render(is_unicode=True))


def score_chart(options: list[PlatformOption], criterion: str, weight: float) -> str:
    chart = pygal.HorizontalBar(width=370, height=60 + 46 * len(options), range=(0, 100),
                                title=f"{criterion} (weight {weight:.2f})", show_legend=False,
                                y_labels=[0, 50, 100], truncate_label=-1,
                                value_formatter=lambda v: f"{v:.0f}", **_COMMON)
    chart.add_xml_filter(_drop_scripts)
    chart.x_labels = [_label(o) for o in reversed(options)]
    chart.add(criterion, [round(o.scores[criterion].score, 1) for o in reversed(options)])
    return str(chart.render(is_unicode=True))


def _summary(result: Assessment) -> str:
    ranked = result.ranked
    if not ranked:
        return "No provider and region meets every requirement; see what cannot be met below."
    best = ranked[0]
    text = (f"Recommended: {_label(best)} ({best.location}) at {money(best.monthly_usd)} per "
            f"month, weighted score {best.total:.1f} of 100.")
    if result.current is not None and best.move is not None:
        mv = best.move
        if mv.move_basis == "already there":
            text += " That is where the workload runs today."
        else:
            cur = result.current
            where = f"{cur.provider} {cur.region}" if cur.region else "on-premises"
            text += (f" Against today ({where}, "
                     f"{money(result.current.monthly_usd)}/month): saving "
                     f"{money(mv.monthly_saving_usd)}/month, one-time move cost about "
                     f"{money(mv.move_cost_usd)}, payback {mv.payback_note}.")
    return text


def render_assessment_html(result: Assessment) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    template = env.from_string((resources.files("cloudshift.render") / "templates" /
                                "assess_report.html.j2").read_text(encoding="utf-8"))
    best = result.best_per_provider()
    return template.render(
        r=result, summary=_summary(result), criteria=CRITERIA, categories=CATEGORIES,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cost_svg=cost_chart(best) if best else "",
        score_svgs=[score_chart(best, c, result.weights[c]) for c in CRITERIA] if best else [],
        rejected=[o for o in result.options if not o.eligible],
        missing=[PROVIDER_NAMES[p] for p in PROVIDER_NAMES
                 if p not in {o.provider for o in best}
                 and any(u.startswith(f"{p}:") for u in result.unmet)],
        names=PROVIDER_NAMES, money=money, saving_text=saving_text,
        sources={name: table.what for name, table in TABLES.items()})


def write_report(html: str, path: Path) -> None:
    """Write the page (:func:`render_assessment_html`) to ``path`` whole or not at all."""
    write_atomic(path, html)
