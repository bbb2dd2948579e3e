"""Azurite: Microsoft's Azure Blob emulator, installed by npm into .tools/ (git-ignored)."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from servers import ROOT, environment, free_port, stop, unavailable, wait_for_port

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is in Microsoft's documentation).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class AzureServer:
    endpoint: str
    connection_string: str
    env: dict[str, str]

    def client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


def azurite_binary() -> str | None:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    from shutil import which

    return which("azurite-blob")


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    binary = azurite_binary()
    if binary is None:
        unavailable("Azurite", "run scripts/test.sh (it installs azurite with npm into .tools/)")
        raise AssertionError  # unreachable: unavailable() raises
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    try:
        proc = subprocess.Popen([binary, "--location", workdir, "--blobHost", "127.0.0.1",
                                 "--blobPort", str(port), "--skipApiVersionCheck", "--silent",
                                 "--loose"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
    except (OSError, RuntimeError) as exc:
        unavailable("Azurite", str(exc))
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={endpoint};")
    env = {"AZURE_STORAGE_CONNECTION_STRING": conn}
    try:
        with environment(env):
            yield AzureServer(endpoint, conn, env)
    finally:
        stop(proc)


@pytest.fixture
def azure_container(azure_server: AzureServer) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    azure_server.client().create_container(name)
    return name
