from __future__ import annotations

pytest_plugins = ["servers.s3", "servers.gcs", "servers.azure", "servers.postgres"]
