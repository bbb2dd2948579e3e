"""The command line as a user meets it: exit codes, one-line errors, JSON, dry runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudshift.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=120)


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))
    root = tmp_path / "src"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(b"\xff\xd8" + os.urandom(2000))
    (root / "photos" / "b.jpg").write_bytes(b"\xff\xd8" + os.urandom(100))
    (root / "orders.csv").write_text("id,eur\n1,20\n")
    (root / "empty").write_bytes(b"")
    return root


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_copy_verify_and_json(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    proc = cli("copy", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert "4 copied" in proc.stdout and "4 by checksum" in proc.stdout
    proc = cli("verify", str(src), str(dst), "--json")
    assert proc.returncode == 0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["levels"]["checksum"] == 4
    (dst / "orders.csv").write_text("id,eur\n1,99\n")
    proc = cli("verify", str(src), str(dst))
    assert proc.returncode == 1
    assert "MISMATCH" in proc.stdout and "orders.csv" in proc.stdout


def test_dry_run_lists_and_changes_nothing(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    proc = cli("copy", str(src), str(dst), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would copy   photos/a.jpg" in proc.stdout
    assert "would copy 4 objects" in proc.stdout
    assert not dst.exists()


def test_ls_shows_objects(src: Path) -> None:
    proc = cli("ls", str(src), "--json")
    assert proc.returncode == 0
    keys = [json.loads(line)["key"] for line in proc.stdout.splitlines()]
    assert keys == ["empty", "orders.csv", "photos/a.jpg", "photos/b.jpg"]


def test_failed_objects_exit_1_and_are_named(tmp_path: Path, src: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "photos").write_text("a file where a folder is needed")
    proc = cli("copy", str(src), str(dst))
    assert proc.returncode == 1
    assert "photos/a.jpg" in proc.stdout and "failed" in proc.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["copy", "ftp://x/y", "/tmp/z"], ["unsupported URI scheme"]),
    (["copy", "/nonexistent/cloudshift/src", "/tmp/z"], ["does not exist"]),
    (["copy", "s3://UPPER/x", "/tmp/z"], ["not a valid bucket name"]),
    (["copy", "/tmp", "/tmp/inside"], ["inside"]),
    (["copy", "/tmp/a", "/tmp/b", "--part-size", "1MiB"], ["at least 5 MiB"]),
    (["copy", "/tmp/a", "/tmp/b", "--part-size", "lots"], ["not a size"]),
    (["resume", "no-such-job"], ["no job"]),
])
def test_bad_input_is_one_line_exit_2(args: list[str], words: list[str]) -> None:
    assert_one_line_error(cli(*args), *words)


def test_unreachable_s3_endpoint_is_one_line(tmp_path: Path, src: Path) -> None:
    proc = cli("copy", str(src), "s3://bucket/x", "--dst-endpoint", "http://127.0.0.1:1",
               env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert_one_line_error(proc, "127.0.0.1:1")


def test_help_teaches(src: Path) -> None:
    proc = cli("copy", "--help")
    assert proc.returncode == 0
    for words in ("--transfers", "--dry-run", "--include", "Example"):
        assert words in proc.stdout


def test_version_prints_and_exits_0() -> None:
    from cloudshift import __version__

    proc = cli("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"cloudshift {__version__}\n", "")
    assert "--version" in cli("--help").stdout


def test_help_wraps_at_the_terminal_not_at_the_docstring() -> None:
    wide = cli("copy", "--help", env={"COLUMNS": "200"}).stdout
    assert any("while it streams and checked against what the source stored" in line
               for line in wide.splitlines()), wide
    assert any(line.strip().startswith("Example: cloudshift copy") for line in wide.splitlines())
    narrow = cli("copy", "--help", env={"COLUMNS": "60"})
    assert narrow.returncode == 0
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60, narrow.stdout
    assert "Example:" in narrow.stdout


def _commands() -> list[tuple[list[str], str]]:
    """Every command of every group (db, prices, ...), with its docstring."""
    import inspect

    import typer.main

    from cloudshift.cli import app

    out: list[tuple[list[str], str]] = []

    def walk(group: object, path: list[str]) -> None:
        for name, command in sorted(getattr(group, "commands", {}).items()):
            if hasattr(command, "commands"):
                walk(command, [*path, name])
            elif command.callback is not None:
                out.append(([*path, name], inspect.getdoc(command.callback) or ""))

    walk(typer.main.get_command(app), [])
    return out


def test_every_command_help_reflows_its_paragraphs() -> None:
    from rich.cells import cell_len
    from typer.testing import CliRunner

    from cloudshift.cli import app

    runner = CliRunner()
    commands = _commands()
    assert {"copy", "jobs", "resume"} <= {" ".join(path) for path, _ in commands}
    assert any(path[0] == "db" for path, _ in commands)
    for path, doc in commands:
        wide = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert wide.exit_code == 0, (path, wide.output)
        lines = wide.output.splitlines()
        for paragraph in doc.split("\n\n"):
            joined = " ".join(paragraph.split())
            if "\n" in paragraph and len(joined) < 230 and "[" not in joined:
                assert any(joined in line for line in lines), (path, joined, wide.output)
        narrow = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "60"})
        assert max(cell_len(line) for line in narrow.output.splitlines()) <= 60, path


def test_usage_error_exit_2() -> None:
    proc = cli("copy")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
