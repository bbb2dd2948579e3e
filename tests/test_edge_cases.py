"""Awkward keys between real cloud servers."""

from __future__ import annotations

from pathlib import Path

import pytest

import cloudshift
from servers.azure import AzureServer
from servers.gcs import GCSServer
from servers.s3 import S3Server

KEYS = {"folder/": b"", "folder/inside.txt": b"in", "with space/ünï ✓.txt": b"u",
        "zero": b"", "a+b&c=d.txt": b"sym"}


def test_s3_to_gcs_to_azure_keeps_awkward_keys(s3_server: S3Server, s3_bucket: str,
                                               gcs_server: GCSServer, gcs_bucket: str,
                                               azure_server: AzureServer, azure_container: str,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))
    c = s3_server.client()
    for key, data in KEYS.items():
        c.put_object(Bucket=s3_bucket, Key=f"p/{key}", Body=data)
    gs, az = f"gs://{gcs_bucket}/q", f"az://{azure_container}/r"
    assert cloudshift.copy(f"s3://{s3_bucket}/p", gs).copied == len(KEYS)
    assert cloudshift.copy(gs, az).copied == len(KEYS)
    blobs = gcs_server.client().bucket(gcs_bucket).list_blobs(prefix="q/")
    assert sorted(b.name for b in blobs) == sorted(f"q/{k}" for k in KEYS)
    names = azure_server.client().get_container_client(azure_container).list_blob_names()
    assert sorted(names) == sorted(f"r/{k}" for k in KEYS)
    report = cloudshift.verify(f"s3://{s3_bucket}/p", az)
    assert report.ok and report.levels["checksum"] == len(KEYS)


def test_folder_marker_to_disk_is_refused_and_said(s3_server: S3Server, s3_bucket: str,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSHIFT_HOME", str(tmp_path / "state"))
    c = s3_server.client()
    for key, data in KEYS.items():
        c.put_object(Bucket=s3_bucket, Key=key, Body=data)
    res = cloudshift.copy(f"s3://{s3_bucket}", str(tmp_path / "dst"))
    assert [f.key for f in res.failures] == ["folder/"]
    assert "folder marker" in res.failures[0].reason
    assert res.copied == len(KEYS) - 1
    assert (tmp_path / "dst" / "with space" / "ünï ✓.txt").read_bytes() == b"u"
