"""`cloudshift assess` as a user runs it: the ranking table, exit codes, one-line errors, JSON,
and an HTML report that parses, draws its charts inline and fetches nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cloudshift.core.errors import UsageError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

_RUN = "from cloudshift.cli import main; main()"


def cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # CLOUDSHIFT_HOME: a folder without fetched prices, so the packaged ones are priced.
    env = {**os.environ, "COLUMNS": "160", "CLOUDSHIFT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


class _Page(HTMLParser):
    """Collects what the checks need: tags seen, table rows by table id, external refs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))
        if tag == "table":
            self._table = a.get("id") or ""
            self.rows.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.rows[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_example_prints_ranking_and_writes_html(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    proc = cli("assess", str(EXAMPLES / "webshop.yaml"), "--html", str(report), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Ranking" in proc.stdout and "Instance mapping" in proc.stdout
    ranking = [line for line in proc.stdout.splitlines() if re.match(r"^│ [123] ", line)]
    assert [line.split("│")[3].strip() for line in ranking] == ["eastus", "us-central1",
                                                                 "us-east-1"]
    assert "Standard_D2as_v5" in proc.stdout and "m6i.large" in proc.stdout
    assert f"report written to {report}" in proc.stderr

    html = report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    # Self-contained: no script, nothing loaded from elsewhere.
    assert "script" not in page.tags
    assert page.external == [], page.external
    assert {"summary", "cost-chart", "score-charts", "ranking", "sources"} <= page.ids
    ranked = page.rows["ranking"][1:]
    assert [row[2].split(" ")[0] for row in ranked] == ["eastus", "us-central1", "us-east-1"]
    assert ranked[1][3] == "526.19" and ranked[2][-1] == "current platform"
    assert "Recommended: Azure eastus" in html
    # One stacked cost chart and one chart per criterion, each well-formed SVG.
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 6
    titles = []
    for svg in svgs:
        root = ET.fromstring(svg)
        titles.append("".join(root.itertext()))
    assert "Monthly cost by category" in titles[0]
    for word in ("compute", "storage", "network", "database"):
        assert word in titles[0]
    for i, criterion in enumerate(("cost", "performance", "reliability", "security",
                                   "availability"), 1):
        assert f"{criterion} (weight" in titles[i]
    sources = {row[0]: row[1] for row in page.rows["sources"][1:]}
    assert sources["vms.csv"] == "packaged" and len(sources) == 11
    assert "egress_tiers.csv" in sources


def test_json_and_unmet_exit_code(tmp_path: Path) -> None:
    proc = cli("assess", str(EXAMPLES / "eu-regulated.yaml"), "--json", "--providers", "gcp,azure",
               home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [o["provider"] for o in doc["options"]] == ["gcp", "gcp"]
    assert doc["options"][0]["rank"] == 1 and doc["options"][0]["eligible"] is True
    assert doc["options"][0]["by_category"]["database"] > 0
    assert any(u.startswith("azure: no region can be priced") for u in doc["unmet"])

    # Nothing meets a 1000-vCPU need: the answer is printed, and the exit code says so.
    text = (EXAMPLES / "webshop.yaml").read_text().replace('vcpus: "2+"', 'vcpus: "1000+"')
    (tmp_path / "big.yaml").write_text(text)
    proc = cli("assess", str(tmp_path / "big.yaml"), "--regions", "us-east-1", home=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "No option meets every requirement" in proc.stdout
    assert "no instance type in aws us-east-1 has 1000+ vCPU" in proc.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    webshop = str(EXAMPLES / "webshop.yaml")
    assert_one_line_error(cli("assess", webshop, "--weights", "cost=0", home=tmp_path),
                          "all weights are zero", "positive weight")
    assert_one_line_error(cli("assess", webshop, "--regions", "eu-west-9", home=tmp_path),
                          "there is no region named 'eu-west-9'", "did you mean")
    assert_one_line_error(cli("assess", str(tmp_path / "missing.yaml"), home=tmp_path),
                          "cannot read workload file")
    (tmp_path / "w.yaml").write_text("compute:\n  - name: a\n    vcpus: 2\n")
    assert_one_line_error(cli("assess", str(tmp_path / "w.yaml"), home=tmp_path),
                          "w.yaml:2: compute[0].memory_gib: required field is missing")
    proc = cli("assess", "--help", home=tmp_path)
    assert proc.returncode == 0 and "at least" in proc.stdout and "--weights" in proc.stdout


def test_html_report_is_written_whole_or_not_at_all(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The page goes to a temporary file beside it and is renamed over the old one: a reader
    sees the old page or the new one, never half of one, and a failed write leaves no litter."""
    from cloudshift.render.assess_html import write_report

    page = tmp_path / "report.html"
    page.write_text("<p>last week's</p>")
    write_report("<p>today's</p>", page)
    assert page.read_text() == "<p>today's</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert page.stat().st_mode & 0o777 == 0o666 & ~umask

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(UsageError, match=r"cannot write .*No space left on device") as err:
        write_report("<p>tomorrow's</p>", page)
    assert "\n" not in str(err.value)
    assert page.read_text() == "<p>today's</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_html_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "report.html"
    proc = cli("assess", str(EXAMPLES / "webshop.yaml"), "--html", str(target), home=tmp_path)
    assert_one_line_error(proc, f"cannot write {target}")
    assert not target.parent.exists()

