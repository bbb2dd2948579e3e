"""No access key, secret, SAS token, connection string or signed URL appears in any output,
error, --json line or journal, through failures, faults and --debug tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faults import FaultProxy
from servers.azure import ACCOUNT, KEY, AzureServer
from servers.s3 import S3Server

AWS_KEY_ID = "AKIACLOUDSHIFTTEST42"
AWS_SECRET = "cs/SuperSecret+Key/7f3a9b2c1d0e8f6a5b4c3d2e1f0a9b8c"


def test_no_secret_anywhere(s3_server: S3Server, s3_bucket: str, azure_server: AzureServer,
                            azure_container: str, tmp_path: Path) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(ACCOUNT, azure_container, account_key=KEY,
                                 permission=ContainerSasPermissions(read=True, write=True,
                                                                    list=True, delete=True,
                                                                    create=True, add=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    sig = next(p.split("=", 1)[1] for p in sas.split("&") if p.startswith("sig="))
    home = tmp_path / "state"
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i}.txt").write_text(f"object {i}")
    s3p, azp = FaultProxy(s3_server.endpoint), FaultProxy(
        azure_server.endpoint.rsplit("/", 1)[0])
    s3p.add("500", method="PUT", nth=[2, 5])
    s3p.add("403", method="PUT", path=r"f3\.txt")
    azp.add("500", method="PUT", nth=[2, 5])
    azp.add("403", method="PUT", path=r"f5\.txt")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "AZURE_"))}
    base["CLOUDSHIFT_HOME"] = str(home)
    aws = {**base, "AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_DEFAULT_REGION": "us-east-1"}
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={azure_server.endpoint};")
    az_conn = {**base, "AZURE_STORAGE_CONNECTION_STRING": conn}
    az_sas = {**base, "AZURE_STORAGE_ACCOUNT": ACCOUNT, "AZURE_STORAGE_SAS_TOKEN": sas}
    s3_dst, az_dst = f"s3://{s3_bucket}/t", f"az://{azure_container}/t"
    bad_sas = sas.replace(sig, "AAAA" + sig[4:])
    runs = [
        (aws, ["copy", str(src), s3_dst, "--dst-endpoint", s3p.url, "--json", "--retries",
               "2"]),
        (aws, ["copy", str(src), s3_dst, "--dst-endpoint", s3p.url, "--debug"]),
        (aws, ["verify", str(src), s3_dst, "--json"]),
        (az_conn, ["copy", str(src), az_dst, "--dst-endpoint", f"{azp.url}/{ACCOUNT}",
                   "--json", "--retries", "2"]),
        (az_sas, ["copy", str(src), az_dst + "2", "--dst-endpoint",
                  f"{azp.url}/{ACCOUNT}", "--debug", "-v", "--retries", "2"]),
        ({**az_sas, "AZURE_STORAGE_SAS_TOKEN": bad_sas},
         ["copy", str(src), az_dst + "3", "--dst-endpoint", azure_server.endpoint,
          "--debug"]),
        ({**az_conn, "AZURE_STORAGE_CONNECTION_STRING": conn.replace(KEY, KEY[:-8] + "AAAAAAA=")},
         ["ls", az_dst, "--debug"]),
        (az_sas, ["ls", az_dst + "2", "--json", "--endpoint", azure_server.endpoint]),
        (aws, ["jobs", "--json"]),
    ]
    outputs = []
    try:
        for env, args in runs:
            proc = subprocess.run([sys.executable, "-m", "cloudshift.cli", *args],
                                  capture_output=True, text=True, env=env, timeout=300)
            outputs.append((args, proc.returncode, proc.stdout + proc.stderr))
    finally:
        s3p.stop()
        azp.stop()
    # The runs did what they should, so the check below means something.
    codes = [rc for _, rc, _ in outputs]
    assert codes[0] == 1 and codes[3] == 1 and codes[4] == 1  # the 403 objects failed
    assert codes[5] == 2 and codes[6] == 2  # bad SAS, bad key: configuration errors
    assert "AccessDenied" in outputs[0][2] or "403" in outputs[0][2]
    journals = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    assert journals, "the runs should have written journals"
    secrets = [AWS_SECRET, AWS_KEY_ID, KEY, sas, sig, conn]
    for args, _, text in outputs:
        for secret in secrets:
            assert secret not in text, (secret[:12], args, text[-2000:])
    for blob in journals:
        for secret in secrets:
            assert secret.encode() not in blob, secret[:12]


@pytest.mark.parametrize("text", [
    "https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig=abc%2Bdef&se=2030",
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5;",
    "https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F2026&"
    "X-Amz-Signature=deadbeef",
    "postgresql://admin:hunter2@db.example.com:5432/bank",
])
def test_redact_patterns(text: str) -> None:
    from cloudshift.core.redact import redact

    out = redact(text)
    for secret in ("abc%2Bdef", "c2VjcmV0a2V5", "AKIAABCDEFGHIJKLMNOP", "deadbeef", "hunter2"):
        assert secret not in out
