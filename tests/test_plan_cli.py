"""``cloudshift plan`` and ``cloudshift report`` on real stores: local disk, moto S3, GCS emulator.

Includes the check that the planner's estimate for a local run (with ``--probe``) is in the
same range as the copy that follows it, and that ``report`` lines the two up.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import cloudshift
from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.cost.planner import plan
from cloudshift.cost.report import report

GiB = 2**30
REGISTER = "from cloudshift.cli import main; main()"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", REGISTER, *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(state))
    return state


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    rng = random.Random(7)
    root = tmp_path / "src"
    for i in range(300):
        p = root / f"d{i % 7}" / f"f{i:04d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randint(1, 48 * 1024)))
    for i in range(3):
        (root / f"big{i}.bin").write_bytes(rng.randbytes(12 * 1024 * 1024))
    return root


def test_local_estimate_vs_measured_copy_and_report(tree: Path, tmp_path: Path,
                                                    home: Path) -> None:
    dst = tmp_path / "dst"
    est = plan(str(tree), str(dst), probe=True, save=True)
    assert est.workload.objects == 303 and est.best.kind == "local"
    assert est.probe is not None and est.probe.bytes_per_s
    assert not any(p.name.startswith(".cloudshift-probe") for p in dst.glob("*")), \
        "the probe must remove its scratch prefix"
    result = cloudshift.copy(str(tree), str(dst))
    assert result.ok and result.job_id == est.job_id
    ratio = result.elapsed / est.time_s
    # The machine is shared and noisy; the estimate must still be the right order of size.
    assert 0.25 < ratio < 4, (result.elapsed, est.time_s, est.probe)
    rep = report(result.job_id)
    assert rep.row("bytes").actual == rep.row("bytes").estimated == est.workload.bytes
    assert rep.row("objects").actual == 303
    assert rep.row("write requests").actual == rep.row("write requests").estimated
    # The saved plan keeps 3 decimals.
    assert rep.row("time").estimated == pytest.approx(est.time_s, rel=1e-3, abs=5e-4)
    assert rep.row("time").actual == pytest.approx(result.elapsed, rel=0.2, abs=0.5)
    proc = cli("report", result.job_id)
    assert proc.returncode == 0, proc.stderr
    assert "estimated" in proc.stdout and "time" in proc.stdout
    proc = cli("report", result.job_id, "--json")
    doc = json.loads(proc.stdout)
    assert {r["metric"] for r in doc["rows"]} >= {"bytes", "write requests", "time"}


def test_report_without_plan_is_a_clear_error(tree: Path, tmp_path: Path, home: Path) -> None:
    result = cloudshift.copy(str(tree), str(tmp_path / "dst"))
    one_line_error(cli("report", result.job_id), "no plan saved", "cloudshift plan")
    one_line_error(cli("report", "copy-000000000000"), "no job")


def test_cli_plan_local_json_and_sample(tree: Path, tmp_path: Path, home: Path) -> None:
    proc = cli("plan", str(tree), str(tmp_path / "dst"), "--json", "--link-gbps", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["workload"]["objects"] == 303 and doc["cost_usd"] == 0
    assert doc["options"][0]["name"] == "this machine (link 2 Gbit/s)"
    assert sum(h["objects"] for h in doc["workload"]["histogram"]) == 303
    proc = cli("plan", str(tree), str(tmp_path / "dst"), "--sample", "30",
               "--total-objects", "3030", "--json", "--no-save")
    doc = json.loads(proc.stdout)
    assert doc["sampled"] == {"listed": 30, "total_objects": 3030, "factor": 101.0,
                              "scaled": True}
    assert doc["workload"]["objects"] == 3030
    assert any("--sample" in w for w in doc["warnings"])
    text = cli("plan", str(tree), str(tmp_path / "dst")).stdout
    assert "to move: 303 objects" in text and "best: this machine" in text
    assert "cloudshift report copy-" in text


def test_cli_bad_input_one_line_exit_2(tree: Path, tmp_path: Path, home: Path) -> None:
    dst = str(tmp_path / "dst")
    one_line_error(cli("plan", str(tree), dst, "--src-region", "aws:us-est-1"),
                   "unknown region 'aws:us-est-1'", "aws:us-east-1")
    one_line_error(cli("plan", str(tree), dst, "--deadline", "0h"), "deadline must be positive")
    one_line_error(cli("plan", str(tree), dst, "--prices", str(tmp_path / "nope.toml")),
                   "cannot read prices file")
    one_line_error(cli("plan", "s3://some-bucket", dst, "--src-region", "gcp:us-central1"),
                   "is on gcp", "s3://some-bucket")
    assert not Path(dst).exists()


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"dst_region": "oracle:phoenix"}, UsageError, "unknown provider"),
    ({"deadline": "soon"}, UsageError, "not a duration"),
    ({"deadline": "9" * 400 + "h"}, UsageError, "deadline is too large"),
    ({"budget": -3.0}, UsageError, "budget must be positive"),
    ({"sample": 0}, UsageError, "--sample must be at least 1"),
    ({"link_gbps": 0.0}, UsageError, "--link-gbps must be positive"),
    ({"prices": "BAD_TOML"}, ConfigError, "is not valid"),
])
def test_api_bad_input(tree: Path, tmp_path: Path, home: Path, kwargs: dict[str, object],
                       error: type[Exception], words: str) -> None:
    if kwargs.get("prices") == "BAD_TOML":
        bad = tmp_path / "bad.toml"
        bad.write_text("this is = = not toml")
        kwargs = {"prices": str(bad)}
    with pytest.raises(error, match=words):
        plan(str(tree), str(tmp_path / "dst"), **kwargs)  # type: ignore[arg-type]


def test_cli_plan_s3_to_gcs_with_cold_objects(s3_server: object, s3_bucket: str,
                                              gcs_server: object, gcs_bucket: str,
                                              home: Path) -> None:
    s3 = s3_server.client()  # type: ignore[attr-defined]
    for i in range(4):
        s3.put_object(Bucket=s3_bucket, Key=f"hot/{i}.txt", Body=b"x" * (1000 + i))
    for i in range(2):
        s3.put_object(Bucket=s3_bucket, Key=f"archive/{i}.bin", Body=b"y" * 5000,
                      StorageClass="DEEP_ARCHIVE")
    gcs = gcs_server.client().bucket(gcs_bucket)  # type: ignore[attr-defined]
    gcs.blob("hot/0.txt").upload_from_string(b"x" * 1000)  # already there, identical
    proc = cli("plan", f"s3://{s3_bucket}", f"gs://{gcs_bucket}", "--src-region",
               "aws:us-east-1", "--dst-region", "gcp:us-central1", "--workers", "2",
               "--json", "--no-save")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    wl = doc["workload"]
    assert wl["src_listed"] == 6 and wl["already_identical"] == 1 and wl["objects"] == 5
    assert wl["storage_classes"]["DEEP_ARCHIVE"] == {"objects": 2, "bytes": 10000}
    assert wl["storage_classes"]["STANDARD"]["objects"] == 3
    (restore,) = doc["restores"]
    assert restore["storage_class"] == "DEEP_ARCHIVE" and restore["hours"] == 12
    direct = next(o for o in doc["options"] if o["name"] == "direct, 2 x m5.8xlarge")
    gb = wl["bytes"] / GiB
    assert direct["terms"]["C_d"]["usd"] == pytest.approx(gb * 0.09, rel=1e-4)
    assert direct["restore_wait_s"] == 12 * 3600
    keys = {p["key"] for p in doc["prices"]}
    assert "storage/aws:us-east-1/DEEP_ARCHIVE/restore_gb" in keys
    text = cli("plan", f"s3://{s3_bucket}", f"gs://{gcs_bucket}", "--no-save",
               "--deadline", "1d").stdout
    assert "restore first: DEEP_ARCHIVE: 2 objects" in text
    assert "src region not given; assumed aws:us-east-1" in text
    assert "[Amazon S3 pricing" in text and "2026-11" in text


def test_report_of_a_finished_copy_says_nothing_is_partial(tmp_path: Path, home: Path) -> None:
    src = tmp_path / "few"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.txt").write_text("x" * (100 + i))
    plan(str(src), str(tmp_path / "dst"), save=True)
    result = cloudshift.copy(str(src), str(tmp_path / "dst"))
    rep = report(result.job_id)
    assert rep.status == "done" and rep.row("objects").actual == 3
    assert not any("partial" in note for note in rep.notes), rep.notes


def test_report_of_another_kind_shows_its_row_and_last_summary(home: Path) -> None:
    """A db job has no plan to compare with: report shows what `cloudshift jobs` shows of it
    and its last run's figures, and exits 0."""
    from test_jobs_cli import DST_DSN, SRC_DSN, db_journal

    job = db_journal(home)
    proc = cli("report", job)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(job) and f"{SRC_DSN} -> {DST_DSN}" in lines[0], proc.stdout
    assert " db " in lines[0] and " done " in lines[0]
    assert "  rows: 10" in lines and "  bytes: 1000 (1000 B)" in lines, proc.stdout

    proc = cli("report", job, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)        # one document
    assert doc["type"] == "report" and doc["job_id"] == job and doc["kind"] == "db"
    assert doc["row"]["src"] == SRC_DSN and doc["row"]["status"] == "done"
    assert doc["summary"] == {"rows": 10, "bytes": 1000}

    # What only a copy's report uses is refused, not ignored.
    for args in (["--plan", "/nonexistent.json"], ["--part-size", "8MiB"]):
        proc = cli("report", job, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"{args[0]} applies to object copy jobs" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_report_of_a_kind_this_version_does_not_know_is_one_line(home: Path) -> None:
    from cloudshift.jobs.journal import JournalBase
    from cloudshift.jobs.spec import JobSpec

    spec = JobSpec("images", {"src": "registry-a/shop", "dst": "registry-b/shop"})
    journal = JournalBase(home / "jobs" / spec.job_id)
    journal.record_spec(spec)
    journal.close()
    one_line_error(cli("report", spec.job_id), "'images' job", "does not know")


@pytest.mark.parametrize("name", ["plan", "assess"])
def test_the_cli_module_only_parses(name: str) -> None:
    """cli/plan.py and cli/assess.py hand every JSON document and HTML page to render/: they
    encode and write nothing themselves."""
    import ast
    import importlib

    module = importlib.import_module(f"cloudshift.cli.{name}")
    tree = ast.parse(Path(str(module.__file__)).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    called = {n.func.attr for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert "json" not in imported
    assert not called & {"dumps", "write_text", "write", "open"}, called
