"""The fixtures start real servers that their own SDKs can talk to."""

from __future__ import annotations

from servers.azure import AzureServer
from servers.gcs import GCSServer
from servers.s3 import S3Server


def test_moto(s3_server: S3Server, s3_bucket: str) -> None:
    c = s3_server.client()
    c.put_object(Bucket=s3_bucket, Key="a", Body=b"x")
    assert c.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"x"


def test_gcs(gcs_server: GCSServer, gcs_bucket: str) -> None:
    b = gcs_server.client().bucket(gcs_bucket)
    b.blob("a").upload_from_string(b"x")
    assert b.blob("a").download_as_bytes() == b"x"


def test_azurite(azure_server: AzureServer, azure_container: str) -> None:
    c = azure_server.client().get_container_client(azure_container)
    c.upload_blob("a", b"x")
    assert c.download_blob("a").readall() == b"x"
