"""Storage backends behind one protocol; :func:`open_store` picks one from a URI."""

from __future__ import annotations

from cloudshift.core.uri import Location, parse
from cloudshift.storage.base import (
    ByteStream,
    Features,
    ObjectInfo,
    ObjectMeta,
    RequestObserver,
    Store,
)


def open_store(uri: str | Location, *, endpoint: str | None = None,
               observer: RequestObserver | None = None, timeout: float | None = None
               ) -> Store:
    """The backend for ``uri``. ``endpoint`` overrides the provider's default endpoint;
    ``observer`` sees every HTTP request (rate limits, throttling); ``timeout`` is the
    per-request network timeout in seconds (the SDK's default when None)."""
    loc = parse(uri) if isinstance(uri, str) else uri
    # Imported lazily: each SDK costs import time and only the ones in use should pay it.
    if loc.scheme == "file":
        from cloudshift.storage.local import LocalStore

        return LocalStore(loc)
    if loc.scheme == "mem":
        from cloudshift.storage.memory import MemoryStore

        return MemoryStore(loc)
    if loc.scheme == "s3":
        from cloudshift.storage.s3 import S3Store

        return S3Store(loc, endpoint=endpoint, observer=observer, timeout=timeout)
    if loc.scheme == "gs":
        from cloudshift.storage.gcs import GCSStore

        return GCSStore(loc, endpoint=endpoint, observer=observer, timeout=timeout)
    from cloudshift.storage.azure import AzureStore

    return AzureStore(loc, endpoint=endpoint, observer=observer, timeout=timeout)


__all__ = ["ByteStream", "Features", "ObjectInfo", "ObjectMeta", "Store", "open_store"]
