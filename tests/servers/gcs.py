"""gcp-storage-emulator: a real HTTP endpoint speaking the GCS JSON API."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from servers import environment, free_port, stop, unavailable, wait_for_port


@dataclass
class GCSServer:
    endpoint: str
    env: dict[str, str]

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    port = free_port()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start",
                                 "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
    except (OSError, RuntimeError) as exc:
        unavailable("gcp-storage-emulator", str(exc))
    endpoint = f"http://127.0.0.1:{port}"
    env = {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": "test"}
    try:
        with environment(env):
            yield GCSServer(endpoint, env)
    finally:
        stop(proc)


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    gcs_server.client().create_bucket(name)
    return name
