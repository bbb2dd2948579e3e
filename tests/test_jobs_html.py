"""`cloudshift jobs --html FILE`: every job of every kind on one self-contained page, with
each job's runs and the figures of its last run's summary; user data escaped, secrets out."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from cloudshift.jobs.journal import JournalBase
from cloudshift.jobs.spec import JobSpec
from test_jobs_cli import DST_DSN, SRC_DSN, cli, db_journal, files, object_job

SECRET = "abc123=="
AZURE = f"DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={SECRET}"


class Page(HTMLParser):
    """The text of every table cell, row by row, and every tag the page opens."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self.rows[-1].append(self.cells[-1])
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def foreign_journal(home: Path) -> str:
    """A job of a kind this version does not know, whose spec and summary carry an Azure
    connection string and a summary of its own figures."""
    spec = JobSpec("images", {"src": AZURE, "dst": "registry-b/<script>shop</script>"})
    journal = JournalBase(home / "jobs" / spec.job_id)
    journal.record_spec(spec)
    journal.start_run()
    journal.finish_run("done", {"type": "summary", "kind": "images", "images": 7,
                                "levels": {"digest": 7}, "note": AZURE,
                                "blobs": [{"key": AZURE}]})
    journal.close()
    return spec.job_id


def test_jobs_html_lists_every_job_its_runs_and_last_summary(tmp_path: Path) -> None:
    home, out = tmp_path / "state", tmp_path / "report" / "jobs.html"
    out.parent.mkdir()
    copy_id = object_job(tmp_path, home)
    db_id = db_journal(home)

    proc = cli("jobs", "--html", str(out), home=home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"wrote {out} (2 jobs)"
    assert sorted(p.name for p in out.parent.iterdir()) == ["jobs.html"]   # no temp file left
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    cells = set(page.cells)
    assert {copy_id, db_id, "objects", "db", "copy", "db-copy", "done"} <= cells, cells
    assert f"{tmp_path / 'src'} -> {tmp_path / 'dst'}" in cells
    assert f"{SRC_DSN} -> {DST_DSN}" in cells
    assert "3 done" in cells
    # The last run's summary, field by field: the object copy's counts and levels, the db's.
    figures = {row[0]: row[1] for row in page.rows if len(row) == 3}
    assert (figures["copied"], figures["skipped"], figures["failed"]) == ("3", "0", "0")
    assert figures["levels.checksum"] == "3", figures
    assert (figures["rows"], figures["bytes"]) == ("10", "1000")
    assert ["bytes", "1000", "1000 B"] in page.rows
    # Self-contained: no script, nothing fetched.
    assert not {"script", "link", "img", "iframe"} & set(page.tags)
    assert "http://" not in text and "https://" not in text


def test_jobs_html_escapes_user_data_and_drops_secrets(tmp_path: Path) -> None:
    home, out = tmp_path / "state", tmp_path / "jobs.html"
    src = files(tmp_path / "<script>alert(1)</script>", 2)
    for _ in range(2):   # two runs: the second finds every object copied already
        proc = cli("copy", str(src), str(tmp_path / "dst"), "--json", home=home)
        assert proc.returncode == 0, proc.stderr
    copy_id = str(json.loads(proc.stdout.splitlines()[-1])["job_id"])
    images_id = foreign_journal(home)

    proc = cli("jobs", "--html", str(out), home=home)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert "<script" not in text.lower() and "script" not in page.tags
    assert f"{src} -> {tmp_path / 'dst'}" in page.cells       # shown, as text
    assert SECRET not in text and "abc123" not in text
    assert "AccountKey=***" in text
    # A kind this version does not know: its own summary figures, generically.
    assert {copy_id, images_id, "images"} <= set(page.cells), page.cells
    assert ["images", "7", ""] in page.rows and ["levels.digest", "7", ""] in page.rows
    # The copy's runs, numbered, and the figures of the last: it found both objects copied.
    # (The copy's id sorts before the images job's, whose one run is done too.)
    runs = [row for row in page.rows if len(row) == 5 and row[3] == "done"]
    assert [row[0] for row in runs] == ["1", "2", "1"], page.rows
    assert ["skipped", "2", ""] in page.rows and ["copied", "0", ""] in page.rows


def test_jobs_html_with_json_and_without_jobs(tmp_path: Path) -> None:
    home, out = tmp_path / "state", tmp_path / "jobs.html"
    proc = cli("jobs", "--html", str(out), home=home)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (0 jobs)" in proc.stderr
    assert "no jobs" in out.read_text(encoding="utf-8")

    db_id = db_journal(home)
    proc = cli("jobs", "--json", "--html", str(out), home=home)
    assert proc.returncode == 0, proc.stderr
    (row,) = map(json.loads, proc.stdout.splitlines())
    assert row["job"] == db_id
    assert proc.stderr.strip() == f"wrote {out} (1 job)"
    assert db_id in Page(out.read_text(encoding="utf-8")).cells


def test_jobs_html_to_a_folder_or_nowhere_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "state"
    for target in (tmp_path, tmp_path / "missing" / "jobs.html"):
        proc = cli("jobs", "--html", str(target), home=home)
        assert proc.returncode == 2, proc
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
