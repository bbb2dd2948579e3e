"""``gs://bucket/prefix``: Google Cloud Storage, through google-cloud-storage (JSON API).

Credentials: with an ``endpoint`` argument or ``STORAGE_EMULATOR_HOST`` set, the store talks
to that endpoint anonymously (emulators and local test servers); otherwise it uses Google's
Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth
application-default login``, the metadata server on GCP). See docs/backends/gcs.md.

Integrity: GCS keeps a CRC32C of every object and an MD5 of every object that was not
composed from parts. Small objects go up in one request carrying the MD5 and CRC32C of the body
in their metadata, so GCS refuses bytes that were corrupted on the way. Large objects go up as
a resumable upload whose initiating request carries the source's MD5/CRC32C (when known) and
whose final chunk carries the CRC32C of everything sent; GCS checks both when it finalizes the
object. After every upload the MD5/CRC32C GCS reports are compared with the bytes we read.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from google.cloud.storage.retry import DEFAULT_RETRY
from requests.adapters import HTTPAdapter

from cloudshift.core.checksums import b64_to_hex, hash_bytes, hex_to_b64, mismatch
from cloudshift.core.errors import ConfigError, IntegrityError, SourceChangedError
from cloudshift.core.redact import redact
from cloudshift.core.uri import Location
from cloudshift.storage.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    ByteStream,
    Features,
    ObjectInfo,
    ObjectMeta,
    RequestObserver,
    Store,
    after,
    split_user_meta,
    user_meta_for_write,
)
from cloudshift.storage.observe import observe_session

DEFAULT_ENDPOINT = "https://storage.googleapis.com"

# Resumable upload chunks must be multiples of 256 KiB (all but the last one).
CHUNK_MULTIPLE = 256 * 1024

# The client is shared by every thread of the engine (google-cloud-storage documents its
# Client as safe to share across threads: requests + urllib3's thread-safe connection pool;
# credentials are refreshed once for everyone instead of once per thread). The catch is
# requests' default pool of 10 connections per host: with more worker threads, every request
# beyond the 10th opens a new TCP/TLS connection and throws it away afterwards ("Connection
# pool is full, discarding connection"), measured with 32 threads against the emulator. So the
# pool is sized for the largest --transfers the CLI accepts; urllib3 opens connections lazily,
# so an unused slot costs nothing. Each thread holds at most one connection of a store at a
# time (read() finishes each ranged request before it yields).
_POOL_SIZE = 1024

# check() must fail within seconds on an unreachable endpoint: no retries, short connect.
_CHECK_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
# Timeout of each data request; the library's retry policy (DEFAULT_RETRY: exponential
# backoff on 408/429/5xx and connection errors, 120 s deadline) wraps each request.
_TIMEOUT = (10.0, 120.0)

# read() fetches the object in ranged requests of this size at least (pinned to the
# generation the first one saw) and yields them in pieces of ``chunk_size``: bounded memory
# per reader, without paying one request round-trip for every 1 MiB chunk.
_READ_WINDOW = 8 * 1024 * 1024

_CREDENTIALS_HINT = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
                     "'gcloud auth application-default login'")


def _with_scheme(endpoint: str) -> str:
    """STORAGE_EMULATOR_HOST is often given as host:port; the client needs a URL."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def _display_endpoint(endpoint: str) -> str:
    """The endpoint as shown in messages, without any user:password@ part."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an SDK message, shortened and scrubbed of anything secret."""
    text = redact(str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _api_message(exc: gexc.GoogleAPICallError) -> str:
    """The server's own message without the request URL the library prepends."""
    message = str(getattr(exc, "message", "") or "")
    if ": " in message and message.split(": ", 1)[0].startswith(("GET ", "POST ", "PUT ")):
        message = message.split(": ", 1)[1]
    return _first_line(Exception(message)) if message else type(exc).__name__


def _is_hash_rejection(exc: gexc.GoogleAPICallError) -> bool:
    """GCS answers 400 "Provided MD5 hash ... doesn't match calculated ..." (or CRC32C)."""
    text = str(exc).lower()
    return isinstance(exc, gexc.BadRequest) and ("md5" in text or "crc32c" in text) and (
        "match" in text)


class _VerifiedReader:
    """File-like view of a :class:`ByteStream` for the library's resumable upload.

    It hands out exactly ``size`` bytes and checks the source before the last of them leaves:
    a source that is shorter or longer than listed raises :class:`SourceChangedError`, a body
    whose checksums differ from the source's raises :class:`IntegrityError`. Raising from
    ``read()`` aborts the upload before the request that would finalize the object.
    """

    def __init__(self, stream: ByteStream, size: int, expected: Mapping[str, str]) -> None:
        self._stream = stream
        self._size = size
        self._expected = expected
        self._pos = 0
        self._done = False

    def tell(self) -> int:
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        if self._done:
            return b""
        if n is None or n < 0:
            n = self._size - self._pos + 1
        data = self._stream.read(n)
        self._pos += len(data)
        if self._pos > self._size:
            raise SourceChangedError(f"source delivered more than the {self._size} bytes listed")
        if self._pos == self._size or len(data) < n:
            if self._pos < self._size:
                raise SourceChangedError(f"source delivered {self._pos} bytes, listed size "
                                         f"was {self._size}")
            if self._stream.read(1):
                raise SourceChangedError(f"source delivered more than the {self._size} bytes "
                                         "listed")
            bad = mismatch(self._stream.checksums(), self._expected)
            if bad is not None:
                raise IntegrityError(f"{bad} of the bytes read differs from the source's {bad}")
            self._done = True
        return data


class GCSStore(Store):
    features = Features(ranged_list=True, metadata=True, server_side_copy=True)

    def __init__(self, loc: Location, *, endpoint: str | None = None,
                 observer: RequestObserver | None = None, timeout: float | None = None
                 ) -> None:
        self.uri = str(loc)
        self._observer = observer
        self._timeout = _TIMEOUT if timeout is None else (min(10.0, timeout), timeout)
        self._bucket_name = loc.bucket
        self._prefix = loc.prefix
        emulator = endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
        self._endpoint = _with_scheme(emulator) if emulator else None
        self._anonymous = emulator is not None
        self._lock = threading.Lock()
        self._client_obj: Any = None

    # -- client -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return _display_endpoint(self._endpoint or DEFAULT_ENDPOINT)

    def _client(self) -> Any:
        client = self._client_obj
        if client is None:
            with self._lock:
                if self._client_obj is None:
                    self._client_obj = self._make_client()
                client = self._client_obj
        return client

    def _make_client(self) -> Any:
        credentials: Credentials
        project: str | None
        if self._anonymous:
            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            project = os.environ.get("GOOGLE_CLOUD_PROJECT") or "cloudshift"
        else:
            try:
                credentials, project = google.auth.default(scopes=list(storage.Client.SCOPE))
            except DefaultCredentialsError as exc:
                path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                reason = (f"GOOGLE_APPLICATION_CREDENTIALS does not point to usable "
                          f"credentials: {_first_line(exc)}" if path
                          else "no Google Cloud credentials found")
                raise ConfigError(reason, hint=_CREDENTIALS_HINT) from None
            project = os.environ.get("GOOGLE_CLOUD_PROJECT") or project
        session = AuthorizedSession(credentials,  # type: ignore[no-untyped-call]
                                    refresh_timeout=60)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_POOL_SIZE)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        observe_session(session, self._observer)
        # What the library does with a session it creates itself (mTLS when configured);
        # it keeps the pool size of the adapter it replaces.
        session.configure_mtls_channel()  # type: ignore[no-untyped-call]
        options = {"api_endpoint": self._endpoint} if self._endpoint else None
        return storage.Client(project=project, credentials=credentials, _http=session,
                              client_options=options)

    def _blob(self, key: str) -> Any:
        return self._client().bucket(self._bucket_name).blob(self._prefix + key)

    @contextlib.contextmanager
    def _denied_as_permission_error(self, what: str) -> Iterator[None]:
        """401/403 during a run: a PermissionError, which the engine does not retry."""
        try:
            yield
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise PermissionError(f"{what}: HTTP {exc.code}: {_api_message(exc)}") from None

    # -- protocol -----------------------------------------------------------------------

    def check(self) -> None:
        client = self._client()
        where = f"gs://{self._bucket_name}"
        # One object listing, not a bucket GET: the object roles users are usually given
        # (Storage Object Viewer/User/Admin) do not include storage.buckets.get, and a copy
        # needs storage.objects.list anyway. A missing bucket answers 404 here as well.
        try:
            it = client.list_blobs(self._bucket_name, prefix=self._prefix or None,
                                   max_results=1, retry=None, timeout=_CHECK_TIMEOUT)
            for _ in it:
                break
        except gexc.NotFound:
            at = "" if self._endpoint is None else f" at {self.endpoint}"
            raise ConfigError(f"bucket {where} does not exist{at}",
                              hint="check the name, or create it with "
                                   f"'gcloud storage buckets create {where}'") from None
        except gexc.Unauthorized:
            raise ConfigError(f"Google Cloud rejected the credentials (HTTP 401) for {where}",
                              hint=_CREDENTIALS_HINT) from None
        except RefreshError as exc:
            raise ConfigError(f"cannot refresh the Google Cloud credentials: {_first_line(exc)}",
                              hint=_CREDENTIALS_HINT) from None
        except gexc.Forbidden as exc:
            raise ConfigError(f"permission denied on {where}: {_api_message(exc)}",
                              hint="the account in use needs storage.objects.list/get/create "
                                   "(e.g. role Storage Object User) on the bucket") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                TransportError):
            raise ConfigError(f"cannot reach the GCS endpoint {self.endpoint}",
                              hint="check the address, that the server is running, and any "
                                   "proxy or firewall in between") from None
        except gexc.GoogleAPICallError as exc:
            raise ConfigError(f"cannot use {where}: HTTP {exc.code}: {_api_message(exc)}"
                              ) from None

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        # startOffset is inclusive (and gcp-storage-emulator ignores it): the keys up to
        # start_after are skipped here as well.
        return after(self._list_from(start_after), start_after)

    def _list_from(self, start: str | None) -> Iterator[ObjectInfo]:
        # GCS lists names in UTF-8 byte order, which is code-point order; so does the
        # emulator. Checked as we go, because the engine merges sorted listings.
        previous = ""
        offset = None if start is None else self._prefix + start
        with self._denied_as_permission_error(f"listing {self.uri}"):
            for blob in self._client().list_blobs(self._bucket_name,
                                                  prefix=self._prefix or None,
                                                  start_offset=offset,
                                                  page_size=1000, retry=DEFAULT_RETRY,
                                                  timeout=self._timeout):
                key = blob.name[len(self._prefix):]
                if not key:
                    # The "folder" placeholder named exactly like the root prefix is not an
                    # object under the root.
                    continue
                if key < previous:
                    raise RuntimeError(f"{self.uri}: listing is not sorted ('{key}' after "
                                       f"'{previous}')")
                previous = key
                yield self._info(blob, key)

    def stat(self, key: str) -> ObjectInfo | None:
        with self._denied_as_permission_error(f"reading {self.uri}{key}"):
            blob = self._client().bucket(self._bucket_name).get_blob(
                self._prefix + key, retry=DEFAULT_RETRY, timeout=self._timeout)
        return None if blob is None else self._info(blob, key)

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        chunk_size = max(1, chunk_size)
        window = max(chunk_size, _READ_WINDOW)
        blob = self._blob(key)
        pos = 0
        while True:
            # raw_download: the stored bytes, never decompressed (GCS would otherwise
            # transcode objects stored with Content-Encoding: gzip). The first response sets
            # blob.generation (x-goog-generation), which pins every further range to it.
            try:
                with self._denied_as_permission_error(f"reading {self.uri}{key}"):
                    data = blob.download_as_bytes(start=pos, end=pos + window - 1,
                                                  raw_download=True, checksum=None,
                                                  retry=DEFAULT_RETRY, timeout=self._timeout)
            except gexc.NotFound:
                if pos == 0:
                    raise FileNotFoundError(f"{self.uri}{key}") from None
                raise SourceChangedError(f"{self.uri}{key} was replaced or deleted while "
                                         "being read") from None
            except gexc.RequestRangeNotSatisfiable:
                return  # empty object, or a size that is a multiple of the window
            view = memoryview(data)
            for start in range(0, len(view), chunk_size):
                yield bytes(view[start:start + chunk_size])
            pos += len(data)
            if len(data) < window:
                return

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        blob = self._blob(key)
        blob.cache_control = meta.cache_control
        blob.content_disposition = meta.content_disposition
        blob.content_encoding = meta.content_encoding
        blob.content_language = meta.content_language
        blob.metadata = user_meta_for_write(meta) or None
        content_type = meta.content_type or "application/octet-stream"
        # In the object metadata too, not only as the media part's Content-Type header: the
        # emulator keeps only the bare type of that header ("text/csv; charset=utf-8"
        # would become "text/csv").
        blob.content_type = content_type
        with self._denied_as_permission_error(f"writing {self.uri}{key}"):
            if size <= part_size:
                sent = self._write_single(blob, stream, size, content_type, checksums,
                                          part_size)
            else:
                sent = self._write_resumable(blob, stream, size, content_type, checksums,
                                             part_size)
        info = self._info(blob, key)
        bad = mismatch(info.checksums, sent)
        if bad is None and info.size != size:
            bad = "size"
        if bad is not None:
            self._delete_generation(blob)
            raise IntegrityError(f"GCS stored {bad} {info.checksums.get(bad, info.size)} for "
                                 f"{self.uri}{key}, the bytes sent have "
                                 f"{sent.get(bad, size)}")
        return info

    def delete(self, key: str) -> None:
        with (self._denied_as_permission_error(f"deleting {self.uri}{key}"),
              contextlib.suppress(gexc.NotFound)):
            self._blob(key).delete(retry=DEFAULT_RETRY, timeout=self._timeout)

    # -- helpers ------------------------------------------------------------------------

    def _write_single(self, blob: Any, stream: ByteStream, size: int, content_type: str,
                      checksums: Mapping[str, str], part_size: int) -> dict[str, str]:
        parts: list[bytes] = []
        got = 0
        while chunk := stream.read(part_size):
            got += len(chunk)
            if got > size:
                raise SourceChangedError(f"source delivered more than the {size} bytes listed")
            parts.append(chunk)
        if got != size:
            raise SourceChangedError(f"source delivered {got} bytes, listed size was {size}")
        data = b"".join(parts)
        del parts
        body = hash_bytes(data)
        bad = mismatch(body, checksums)
        if bad is not None:
            raise IntegrityError(f"{bad} of the bytes read differs from the source's {bad}")
        # GCS recomputes both and rejects the upload (400) when either differs.
        blob.md5_hash = hex_to_b64(body["md5"])
        blob.crc32c = hex_to_b64(body["crc32c"])
        try:
            # One multipart request up to 8 MiB; above that the library sends the body as a
            # single-chunk resumable upload (two requests), with the same metadata.
            blob.upload_from_string(data, content_type=content_type, checksum=None,
                                    retry=DEFAULT_RETRY, timeout=self._timeout)
        except gexc.BadRequest as exc:
            if _is_hash_rejection(exc):
                raise IntegrityError(f"GCS rejected the upload: {_api_message(exc)}") from None
            raise
        return body

    def _write_resumable(self, blob: Any, stream: ByteStream, size: int, content_type: str,
                         checksums: Mapping[str, str], part_size: int) -> dict[str, str]:
        # The source's own checksums go into the initiating request's object metadata: GCS
        # validates them when the upload finalizes and refuses an object that differs.
        if checksums.get("md5"):
            blob.md5_hash = hex_to_b64(checksums["md5"])
        if checksums.get("crc32c"):
            blob.crc32c = hex_to_b64(checksums["crc32c"])
        blob.chunk_size = max(CHUNK_MULTIPLE, part_size - part_size % CHUNK_MULTIPLE)
        reader = _VerifiedReader(stream, size, checksums)
        # A resumable upload creates the object only when its last chunk is accepted; until
        # then the session is invisible (no object, no partial bytes, nothing to clean up) and
        # GCS discards it after a week. Any exception before that (source changed, checksum
        # mismatch, network, cancel) therefore leaves no object and the previous version of
        # the key untouched. size=None keeps the library from switching to a single multipart
        # request (which would read the whole body into memory); _VerifiedReader enforces the
        # size instead. checksum="crc32c" makes the library send the CRC32C of all bytes sent
        # with the final chunk (GCS checks it) and compare the CRC32C GCS reports; on a
        # mismatch it deletes the object and raises DataCorruption.
        try:
            blob.upload_from_file(reader, rewind=False, size=None, content_type=content_type,
                                  checksum="crc32c", retry=DEFAULT_RETRY, timeout=self._timeout)
        except DataCorruption as exc:
            raise IntegrityError(f"GCS stored other bytes than were sent: {_first_line(exc)}"
                                 ) from None
        except gexc.BadRequest as exc:
            if _is_hash_rejection(exc):
                raise IntegrityError(f"GCS rejected the upload: {_api_message(exc)}") from None
            raise
        return stream.checksums()

    def _delete_generation(self, blob: Any) -> None:
        """Remove an object we just wrote (only that generation: never a newer write)."""
        with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
            blob.delete(if_generation_match=blob.generation, retry=DEFAULT_RETRY,
                        timeout=self._timeout)

    def _info(self, blob: Any, key: str) -> ObjectInfo:
        sums: dict[str, str] = {}
        md5 = b64_to_hex(blob.md5_hash)
        if md5:
            sums["md5"] = md5
        crc = b64_to_hex(blob.crc32c)
        if crc:
            sums["crc32c"] = crc
        user, mtime = split_user_meta(blob.metadata or {})
        meta = ObjectMeta(content_type=blob.content_type,
                          content_encoding=blob.content_encoding,
                          content_disposition=blob.content_disposition,
                          cache_control=blob.cache_control,
                          content_language=blob.content_language,
                          user=user, mtime=mtime)
        return ObjectInfo(key=key, size=int(blob.size or 0), mtime=blob.updated,
                          etag=blob.etag, checksums=sums, storage_class=blob.storage_class,
                          meta=meta)
