"""Configuration errors against real servers: one line, exit 2, no secrets."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servers.azure import ACCOUNT, AzureServer
from servers.gcs import GCSServer
from servers.s3 import S3Server


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudshift.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def one_line_exit_2(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    return str(tmp_path / "src")


def test_missing_s3_bucket(s3_server: S3Server, src: str) -> None:
    one_line_exit_2(cli("copy", src, "s3://no-such-bucket-cs/x"), "no-such-bucket-cs")


def test_missing_gcs_bucket(gcs_server: GCSServer, src: str) -> None:
    one_line_exit_2(cli("copy", src, "gs://no-such-bucket-cs/x"), "no-such-bucket-cs")


def test_missing_azure_container(azure_server: AzureServer, src: str) -> None:
    one_line_exit_2(cli("copy", src, "az://no-such-container/x"), "no-such-container")


def test_wrong_azure_key_is_reported_without_the_key(azure_server: AzureServer,
                                                     azure_container: str, src: str) -> None:
    bad_key = base64.b64encode(b"definitely-not-the-right-key-0123456789").decode()
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={bad_key};"
            f"BlobEndpoint={azure_server.endpoint};")
    proc = cli("copy", src, f"az://{azure_container}/x",
               env={"AZURE_STORAGE_CONNECTION_STRING": conn})
    line = one_line_exit_2(proc)
    assert bad_key not in proc.stderr + proc.stdout
    assert "auth" in line.lower() or "credential" in line.lower() or "key" in line.lower()


def test_unreachable_gcs_endpoint(src: str) -> None:
    one_line_exit_2(cli("copy", src, "gs://bucket/x", "--dst-endpoint", "http://127.0.0.1:1"),
                    "127.0.0.1:1")


def test_unreachable_azure_endpoint(src: str) -> None:
    proc = cli("copy", src, "az://container/x", "--dst-endpoint",
               f"http://127.0.0.1:1/{ACCOUNT}",
               env={"AZURE_STORAGE_CONNECTION_STRING":
                    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey="
                    f"{base64.b64encode(b'k' * 32).decode()};BlobEndpoint=http://127.0.0.1:1/x;"})
    one_line_exit_2(proc, "127.0.0.1:1")


def test_cli_round_trip_through_s3_and_json(s3_server: S3Server, s3_bucket: str, src: str,
                                            tmp_path: Path) -> None:
    dst = f"s3://{s3_bucket}/backup"
    proc = cli("copy", src, dst, "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"ok": true' in proc.stdout.splitlines()[-1]
    proc = cli("verify", src, dst)
    assert proc.returncode == 0 and "1 checksum" in proc.stdout
    proc = cli("ls", dst)
    assert proc.returncode == 0 and "a.txt" in proc.stdout
