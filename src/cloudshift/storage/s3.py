"""``s3://bucket/prefix``: Amazon S3 and S3-compatible servers, through boto3.

One boto3 client per store (boto3 clients are thread-safe; sessions are not, so the session
is only used while building clients). Credentials and region come from boto3's standard chain
(``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., SSO, instance roles); the region defaults to
us-east-1. The endpoint is the ``endpoint`` argument, else whatever boto3 itself resolves
(``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``, else AWS).
A non-AWS endpoint is addressed path-style. See docs/backends/s3.md.

Integrity: every PUT and every part carries ``Content-MD5``, so S3 rejects bytes that were
corrupted on the way; the ETag S3 returns is then compared with the MD5 we computed (for
multipart uploads, the MD5 of the part MD5s plus ``-N``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import parse_timestamp

from cloudshift.core.checksums import b64_to_hex, hash_bytes, mismatch
from cloudshift.core.errors import ConfigError, IntegrityError, ObjectError, SourceChangedError
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
    split_user_meta,
    user_meta_for_write,
)
from cloudshift.storage.observe import observe_botocore
from cloudshift.storage.s3_get import LeanGet

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

DEFAULT_REGION = "us-east-1"

# S3's multipart limits: every part but the last at least 5 MiB, at most 5 GiB, 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000

# How often read() reopens a download that broke mid-stream (from where it broke).
_READ_RESUMES = 3

_CLIENT_CONFIG = Config(
    max_pool_connections=64,
    retries={"mode": "standard", "max_attempts": 5},
    # We send Content-MD5 ourselves. botocore's default ("when_supported") would also add a
    # CRC32 (as an aws-chunked trailer on streamed bodies), which several S3-compatible
    # servers reject and which costs a second pass over every byte.
    request_checksum_calculation="when_required",
    user_agent_extra="cloudshift",
)
# check() must fail fast on an unreachable endpoint instead of retrying for minutes.
_CHECK_CONFIG = Config(
    connect_timeout=4,
    read_timeout=15,
    retries={"mode": "standard", "total_max_attempts": 2},
)

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_KEY_REJECTED = {
    "InvalidAccessKeyId": "the access key id is not known to the server",
    "SignatureDoesNotMatch": "the secret key does not match the access key id",
    "InvalidToken": "the session token is invalid",
    "ExpiredToken": "the session token has expired",
    "TokenRefreshRequired": "the session token has expired",
    "InvalidSecurity": "the security token is invalid",
}
_CRED_HINT = "check AWS_PROFILE, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
_KMS_SSE = frozenset({"aws:kms", "aws:kms:dsse"})
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
# Metadata names travel as HTTP header names (x-amz-meta-NAME).
_META_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")
# RFC 2047 encoded-word: =?charset?B|Q?text?=  (an optional *language after the charset).
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_WORD_BYTES = 45  # 45 bytes -> 60 base64 chars -> a 72-char encoded-word (RFC 2047: <= 75)


def _timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with fast paths for the two forms S3 sends: RFC 1123 in
    headers (Last-Modified) and ISO 8601 in listings. botocore's own goes through dateutil,
    which cost ~0.5 ms of a GetObject's ~4.5 ms of CPU (measured against moto)."""
    if isinstance(value, str):
        try:
            if value.endswith(" GMT"):
                return parsedate_to_datetime(value)
            if value.endswith("Z") and "T" in value:
                return datetime.fromisoformat(value)
        except (TypeError, ValueError):
            pass
    return parse_timestamp(value)


def _botocore_session() -> botocore.session.Session:
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_timestamp)
    return core


PARTS_PER_OBJECT = 4  # as rclone's --s3-upload-concurrency default
DEFAULT_PART_SLOTS = 16
# Bytes of request bodies (parts, and single PUTs) held in memory at once by all S3 stores of
# the process together. Ten 16 MiB parts keep the server busy (bench large-s3: 6 to 14 parts
# all copy as fast as moto takes them) and hold 16 transfers of large objects to ~240 MB.
DEFAULT_BODY_MEMORY = 160 * 1024 * 1024


class _BodyBuffers:
    """Buffers for request bodies, at most ``limit`` bytes of them in use or kept at once.

    :meth:`acquire` blocks while the bytes in use plus the new buffer would pass the limit,
    except that a few bodies may always be in use whatever their size (with parts much larger
    than the default, the limit alone would leave a single part in flight). Released buffers
    of part size are kept for the next part: allocating (and zero-filling) 16 MiB per part
    costs time, and malloc tends to keep freed blocks of that size rather than return them
    to the system, so reusing them is what keeps the process's memory at the limit.
    """

    _KEEP_MIN = MIN_PART_SIZE  # smaller bodies are cheap to allocate: not worth keeping
    _ALWAYS = PARTS_PER_OBJECT  # bodies that may be in use at once, whatever their size

    def __init__(self, limit: int) -> None:
        self._cond = threading.Condition()
        self.limit = limit
        self.in_use = 0
        self._free: list[bytearray] = []
        self._free_bytes = 0

    def acquire(self, size: int) -> bytearray:
        limit = max(self.limit, self._ALWAYS * size)
        with self._cond:
            while self.in_use and self.in_use + size > limit:
                self._cond.wait()
            self.in_use += size
            for i, buf in enumerate(self._free):
                if len(buf) == size:
                    del self._free[i]
                    self._free_bytes -= size
                    return buf
            while self._free and self.in_use + self._free_bytes > limit:
                self._free_bytes -= len(self._free.pop(0))
        return bytearray(size)

    def release(self, buf: bytearray) -> None:
        with self._cond:
            self.in_use -= len(buf)
            if (len(buf) >= self._KEEP_MIN
                    and self.in_use + self._free_bytes + len(buf) <= self.limit):
                self._free.append(buf)
                self._free_bytes += len(buf)
            self._cond.notify_all()


_BODIES = _BodyBuffers(DEFAULT_BODY_MEMORY)


class S3Store(Store):
    features = Features(ranged_list=True, metadata=True, open=True, cleanup_incomplete=True,
                        limit_parts=True, server_side_copy=True)

    def __init__(self, loc: Location, *, endpoint: str | None = None,
                 observer: RequestObserver | None = None, timeout: float | None = None
                 ) -> None:
        self.uri = str(loc)
        self._observer = observer
        self._bucket = loc.bucket
        self._prefix = loc.prefix
        try:
            self._session = boto3.session.Session(botocore_session=_botocore_session())
            self._region = self._session.region_name or DEFAULT_REGION
            self._endpoint_url: str | None = endpoint or _configured_endpoint(self._session)
            self._config = _CLIENT_CONFIG
            if timeout is not None:
                self._config = self._config.merge(
                    Config(read_timeout=timeout, connect_timeout=min(timeout, 10.0)))
            base = self._config
            # Path-style for anything that is not AWS: virtual-host style needs wildcard DNS
            # (bucket.host) that MinIO, Ceph, moto and most private endpoints lack.
            if self._endpoint_url and not _is_aws(self._endpoint_url):
                self._config = base.merge(Config(s3={"addressing_style": "path"}))
            self._client = self._new_client(self._config)
            url = str(self._client.meta.endpoint_url)
            if not self._endpoint_url and not _is_aws(url):
                # An endpoint from a source we did not read (e.g. a profile's services
                # section): rebuild the client for it, path-style.
                self._endpoint_url = url
                self._config = base.merge(Config(s3={"addressing_style": "path"}))
                self._client = self._new_client(self._config)
            self.endpoint = _display_url(url)
            observe_botocore(self._client, observer)
            for operation in ("PutObject", "UploadPart"):
                self._client.meta.events.register(f"before-call.s3.{operation}",
                                                  _expect_continue)
        except ProfileNotFound as exc:
            raise ConfigError(f"AWS profile '{exc.kwargs.get('profile')}' is not configured",
                              hint="check AWS_PROFILE and ~/.aws/config") from None
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise ConfigError(f"invalid S3 endpoint for {self.uri}: {exc}",
                              hint="give a URL such as https://host:port") from None
        except BotoCoreError as exc:  # e.g. an empty AWS_CA_BUNDLE with an https endpoint
            raise ConfigError(f"cannot set up the S3 client for {self.uri}: {exc}") from None
        self._check_client: S3Client | None = None
        # GetObject without the client's per-call machinery (s3_get.py): built on first use,
        # False where it does not apply.
        self._lean: LeanGet | Literal[False] | None = None
        self._lean_lock = threading.Lock()
        self._part_slots = threading.BoundedSemaphore(DEFAULT_PART_SLOTS)

    def limit_parts_in_memory(self, slots: int) -> None:
        """How many parts of multipart uploads this store may hold in memory at once, across
        all objects (the engine passes its --transfers). All stores together also stay
        within the process's :data:`DEFAULT_BODY_MEMORY`."""
        self._part_slots = threading.BoundedSemaphore(max(1, slots))

    # -- setup -----------------------------------------------------------------------------

    def _new_client(self, config: Config) -> S3Client:
        # A plain-http endpoint has no certificate to verify; passing verify=False keeps an
        # AWS_CA_BUNDLE meant for other endpoints (or set to "") from breaking it.
        plain = bool(self._endpoint_url and self._endpoint_url.lower().startswith("http://"))
        return self._session.client(
            "s3", region_name=self._region, endpoint_url=self._endpoint_url,
            verify=False if plain else None, config=config)

    # -- Store protocol --------------------------------------------------------------------

    def check(self) -> None:
        if self._check_client is None:
            self._check_client = self._new_client(self._config.merge(_CHECK_CONFIG))
        client = self._check_client
        try:
            client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            raise self._bucket_error(exc, client) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ConfigError(f"no AWS credentials found for {self.uri}",
                              hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY") from None
        except SSLError:
            raise ConfigError(f"TLS connection to the S3 endpoint {self.endpoint} failed",
                              hint="check the certificate and AWS_CA_BUNDLE; a plain-http "
                                   "endpoint needs an http:// URL") from None
        except (BotoConnectionError, ReadTimeoutError):
            raise ConfigError(f"cannot reach the S3 endpoint {self.endpoint}",
                              hint="check the endpoint URL (endpoint option or "
                                   "AWS_ENDPOINT_URL) and that the server is up") from None
        except BotoCoreError as exc:
            raise ConfigError(f"cannot use {self.uri}: {exc}") from None

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        cut = len(self._prefix)
        previous: str | None = None
        ranged: dict[str, Any] = ({} if start_after is None
                                  else {"StartAfter": self._prefix + start_after})
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix,
                                           **ranged):
                for obj in page.get("Contents", []):
                    full = obj["Key"]
                    # S3 lists in UTF-8 byte order (= code-point order); the engine merges
                    # listings relying on it, so an out-of-order server must not go unnoticed.
                    if previous is not None and full <= previous:
                        raise ConfigError(
                            f"the S3 endpoint {self.endpoint} listed '{full}' after "
                            f"'{previous}'", hint="listings must be sorted by key")
                    previous = full
                    key = full[cut:]
                    if not key:  # an object named exactly like the prefix ("photos/")
                        continue
                    etag = _unquote(obj.get("ETag"))
                    yield ObjectInfo(key=key, size=obj.get("Size", 0),
                                     mtime=_utc(obj.get("LastModified")), etag=etag,
                                     checksums=_etag_checksums(etag),
                                     storage_class=obj.get("StorageClass"))
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise ConfigError(f"bucket '{self._bucket}' does not exist",
                                  hint=f"at {self.endpoint}") from None
            if code in ("AccessDenied", *_KEY_REJECTED):
                raise ConfigError(f"S3 refused to list {self.uri} ({code})",
                                  hint=_CRED_HINT) from None
            raise

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=self._prefix + key,
                                            ChecksumMode="ENABLED")
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return _info_from_headers(key, head)

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _, chunks = self.open(key, chunk_size)
        return chunks

    def open(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
             ) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's info (with ``meta``) and its bytes, from one GetObject: the response
        headers carry everything a HEAD would, so a copy costs one request less."""
        resp = self._lean_get(key) or self._get(key, {})
        return _info_from_headers(key, resp), self._stream(key, resp, chunk_size)

    def _lean_get(self, key: str) -> dict[str, Any] | None:
        if self._lean is False:
            return None
        if self._lean is None:
            with self._lean_lock:
                if self._lean is None:
                    self._lean = LeanGet.build(self._client, self._session, self._bucket,
                                               self._observer, _timestamp) or False
            if self._lean is False:
                return None
        return self._lean.get(self._prefix + key)

    def _get(self, key: str, extra: dict[str, Any]) -> Any:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=self._prefix + key,
                                           **extra)
        except ClientError as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from None
            if _code(exc) in ("PreconditionFailed", "412"):
                raise SourceChangedError(f"'{key}' changed while it was being read") from None
            raise

    def _stream(self, key: str, resp: Any, chunk_size: int) -> Iterator[bytes]:
        pos = 0
        etag: str | None = resp.get("ETag")
        total: int | None = resp.get("ContentLength")
        resumes = 0
        while True:
            body = resp["Body"]
            try:
                for chunk in body.iter_chunks(chunk_size):
                    pos += len(chunk)
                    yield chunk
                return
            except FlexibleChecksumError:
                raise IntegrityError(f"the bytes read from '{key}' do not match the checksum "
                                     "S3 stored for it") from None
            except (ResponseStreamingError, ReadTimeoutError, IncompleteReadError):
                resumes += 1
                if resumes > _READ_RESUMES or etag is None:
                    raise
                if total is not None and pos >= total:
                    return
            finally:
                body.close()
            # Resume where the broken download stopped, only if the object is unchanged.
            resp = self._get(key, {"Range": f"bytes={pos}-", "IfMatch": etag})

    def cleanup_incomplete(self, keys: Iterable[str]) -> int:
        """After a killed run: abort the multipart uploads left open for ``keys`` (their
        parts are billed and invisible until aborted). Returns how many were aborted."""
        wanted = {self._prefix + k for k in keys}
        if not wanted:
            return 0
        aborted = 0
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self._bucket, Prefix=self._prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload.get("Key") in wanted:
                    with contextlib.suppress(ClientError):
                        self._client.abort_multipart_upload(
                            Bucket=self._bucket, Key=upload["Key"],
                            UploadId=upload["UploadId"])
                        aborted += 1
        return aborted

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        full = self._prefix + key
        headers = _write_headers(key, meta)  # before any byte is read: may refuse the object
        part_size = _part_size(size, part_size)
        if size <= part_size:
            return self._put(key, full, stream, size=size, meta=meta, checksums=checksums,
                             headers=headers)
        return self._multipart(key, full, stream, size=size, meta=meta, checksums=checksums,
                               headers=headers, part_size=part_size)

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._prefix + key)
        except ClientError as exc:
            if not _is_missing(exc) or _code(exc) == "NoSuchBucket":
                raise

    # -- writes ----------------------------------------------------------------------------

    def _put(self, key: str, full: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
             checksums: Mapping[str, str], headers: dict[str, Any]) -> ObjectInfo:
        body = _BODIES.acquire(size)
        try:
            _read_exactly(key, stream, body)
            # The stream hashed exactly these bytes, unless a caller read from it before.
            sums = stream.checksums() if stream.bytes_read == size else hash_bytes(bytes(body))
            _check_source(key, sums, checksums)
            md5 = sums["md5"]
            # botocore sends a bytearray as it is, in one write (the stubs leave it out of
            # Body's types); bytes it would wrap in a BytesIO and send 16 KiB at a time.
            resp = self._client.put_object(Bucket=self._bucket, Key=full,
                                           Body=body,  # type: ignore[arg-type]
                                           ContentMD5=_b64(bytes.fromhex(md5)), **headers)
        finally:
            _BODIES.release(body)
        etag = _unquote(resp.get("ETag"))
        # With SSE-KMS / SSE-C the ETag is not an MD5; S3 still checked Content-MD5.
        if not _etag_not_md5(resp) and (etag or "").lower() != md5:
            raise IntegrityError(f"S3 stored '{key}' with ETag {etag}, expected the MD5 {md5} "
                                 "of the bytes sent")
        return ObjectInfo(key=key, size=size, etag=etag, checksums={"md5": md5}, meta=meta)

    def _multipart(self, key: str, full: str, stream: ByteStream, *, size: int,
                   meta: ObjectMeta, checksums: Mapping[str, str], headers: dict[str, Any],
                   part_size: int) -> ObjectInfo:
        upload_id = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=full, **headers)["UploadId"]
        uploads: list[Future[tuple[bytes, Any]]] = []
        # Parts go up PARTS_PER_OBJECT at a time while the next one is read. Each part is read
        # straight into a buffer from _BODIES (the only copy made of its bytes), hashed there
        # and handed to botocore as it is. A part in memory also takes one of the store's
        # part slots, and one object holds at most PARTS_PER_OBJECT + 1 parts, so memory
        # stays within the process-wide limit however many objects are in flight.
        pool = ThreadPoolExecutor(max_workers=PARTS_PER_OBJECT, thread_name_prefix="s3-part")
        slots = self._part_slots

        def send(number: int, body: bytearray) -> tuple[bytes, Any]:
            try:
                # Hashed here, on the part's thread, while the next part is being read.
                digest = hashlib.md5(body, usedforsecurity=False).digest()
                resp = self._client.upload_part(Bucket=self._bucket, Key=full,
                                                UploadId=upload_id, PartNumber=number,
                                                Body=body,  # type: ignore[arg-type]
                                                ContentMD5=_b64(digest))
                return digest, resp
            finally:
                _BODIES.release(body)
                slots.release()

        try:
            sent = 0
            pending: set[Future[tuple[bytes, Any]]] = set()
            while sent < size:
                want = min(part_size, size - sent)
                if len(pending) > PARTS_PER_OBJECT:
                    wait(pending, return_when=FIRST_COMPLETED)
                pending = _finished_ok(pending)  # fail fast: stop once a part has failed
                slots.acquire()
                try:
                    body = _BODIES.acquire(want)
                except BaseException:
                    slots.release()
                    raise
                try:
                    got = stream.readinto(body)
                    if got != want:
                        raise SourceChangedError(f"'{key}' ended after {sent + got} of its "
                                                 f"{size} bytes; the source changed")
                    fut = pool.submit(send, len(uploads) + 1, body)
                except BaseException:
                    _BODIES.release(body)
                    slots.release()
                    raise
                del body
                uploads.append(fut)
                pending.add(fut)
                sent += want
            results = [fut.result() for fut in uploads]
            parts: list[CompletedPartTypeDef] = [
                {"ETag": resp["ETag"], "PartNumber": i + 1}
                for i, (_, resp) in enumerate(results)]
            digests = [digest for digest, _ in results]
            if stream.read(1):
                raise SourceChangedError(f"'{key}' has more than the {size} bytes listed; "
                                         "the source changed")
            sums = stream.checksums()
            _check_source(key, sums, checksums)
            done = self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=full, UploadId=upload_id,
                MultipartUpload={"Parts": parts})
        except BaseException:
            # Also on KeyboardInterrupt: parts of an unfinished upload are billed forever.
            # Parts already handed to the pool finish first (at most a few), so the abort
            # below comes after every part and none can land after it.
            pool.shutdown(wait=True)
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=full,
                                                    UploadId=upload_id)
            raise
        pool.shutdown(wait=True)
        expected = (hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
                    + f"-{len(digests)}")
        etag = _unquote(done.get("ETag"))
        if not _etag_not_md5(done) and (etag or "").lower() != expected:
            raise IntegrityError(f"S3 completed '{key}' with ETag {etag}, expected {expected} "
                                 "from the parts sent")
        return ObjectInfo(key=key, size=size, etag=etag, checksums={"md5": sums["md5"]},
                          meta=meta)

    # -- errors ----------------------------------------------------------------------------

    def _bucket_error(self, exc: ClientError, client: S3Client) -> ConfigError:
        code, status = _code(exc), _status(exc)
        if status == 404 or code in _MISSING_CODES:
            return ConfigError(f"bucket '{self._bucket}' does not exist at {self.endpoint}",
                               hint="create it, or check the bucket name, region and endpoint")
        if status == 403 and code not in _KEY_REJECTED:
            # HEAD responses have no body, so a 403 does not say why. One more request (only
            # on this error path) tells rejected credentials from a missing permission.
            try:
                client.list_objects_v2(Bucket=self._bucket, MaxKeys=1)
            except ClientError as again:
                code = _code(again)
            except BotoCoreError:
                pass
        if code in _KEY_REJECTED:
            return ConfigError(f"S3 at {self.endpoint} rejected the credentials: "
                               f"{_KEY_REJECTED[code]}", hint=_CRED_HINT)
        if status == 403:
            return ConfigError(f"access to bucket '{self._bucket}' was denied (403 {code})",
                               hint="the credentials lack s3:ListBucket on it, or a bucket "
                                    f"policy refuses them; {_CRED_HINT}")
        return ConfigError(f"cannot use bucket '{self._bucket}' at {self.endpoint}: "
                           f"S3 answered {status} {code}")


# -- helpers ---------------------------------------------------------------------------------


def _configured_endpoint(session: boto3.session.Session) -> str | None:
    """The endpoint boto3 would take from the environment or the profile, without building
    a client to find out (that costs a few hundred milliseconds)."""
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        scoped = session._session.get_scoped_config()
    except Exception:  # a broken profile is reported when the client is built
        return None
    services = scoped.get("s3")
    if isinstance(services, dict) and services.get("endpoint_url"):
        return str(services["endpoint_url"])
    value = scoped.get("endpoint_url")
    return str(value) if value else None


def _info_from_headers(key: str, head: Mapping[str, Any]) -> ObjectInfo:
    """ObjectInfo from a HeadObject or GetObject response (they share these fields)."""
    etag = _unquote(head.get("ETag"))
    checksums = {} if _etag_not_md5(head) else _etag_checksums(etag)
    crc = head.get("ChecksumCRC32C")
    if crc and "-" not in crc and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        value = b64_to_hex(crc)
        if value:
            checksums["crc32c"] = value
    user, mtime = split_user_meta(
        {k: _decode_meta_value(v) for k, v in head.get("Metadata", {}).items()})
    meta = ObjectMeta(content_type=head.get("ContentType"),
                      content_encoding=head.get("ContentEncoding"),
                      content_disposition=head.get("ContentDisposition"),
                      cache_control=head.get("CacheControl"),
                      content_language=head.get("ContentLanguage"),
                      user=user, mtime=mtime)
    return ObjectInfo(key=key, size=head.get("ContentLength", 0),
                      mtime=_utc(head.get("LastModified")), etag=etag, checksums=checksums,
                      storage_class=head.get("StorageClass") or "STANDARD", meta=meta)


def _encode_meta_value(value: str) -> str:
    """A user-metadata value as an S3 header can carry it: as is when it is plain printable
    ASCII, else RFC 2047 encoded-words (``=?UTF-8?B?...?=``), which S3 itself decodes."""
    if (value.isascii() and value.isprintable() and value == value.strip()
            and "=?" not in value):
        return value
    words: list[bytes] = []
    current = b""
    for char in value:
        encoded = char.encode("utf-8", "surrogatepass")
        if current and len(current) + len(encoded) > _WORD_BYTES:
            words.append(current)
            current = b""
        current += encoded
    words.append(current)
    return " ".join(f"=?UTF-8?B?{_b64(word)}?=" for word in words)


def _decode_meta_value(value: str) -> str:
    """Undo RFC 2047 encoded-words (ours, or the ones S3 returns for non-ASCII values)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    last_was_word = False
    try:
        for m in _ENCODED_WORD.finditer(value):
            gap = value[pos:m.start()]
            if not (last_was_word and gap.strip() == ""):  # space between words is dropped
                out.append(gap)
            charset, kind, text = m.group(1), m.group(2).upper(), m.group(3)
            raw = (base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                   if kind == "B" else binascii.a2b_qp(text.encode("ascii"), header=True))
            out.append(raw.decode(charset))
            pos = m.end()
            last_was_word = True
    except (ValueError, LookupError):
        return value
    out.append(value[pos:])
    return "".join(out)


def _write_headers(key: str, meta: ObjectMeta) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for name, value in (("ContentType", meta.content_type),
                        ("ContentEncoding", meta.content_encoding),
                        ("ContentDisposition", meta.content_disposition),
                        ("CacheControl", meta.cache_control),
                        ("ContentLanguage", meta.content_language)):
        if not value:
            continue
        if not (value.isascii() and value.isprintable()):
            raise ObjectError(f"{name} of '{key}' is not printable ASCII; S3 cannot store "
                              f"it: {value!r}")
        headers[name] = value
    user: dict[str, str] = {}
    for name, value in user_meta_for_write(meta).items():
        if not _META_NAME.match(name):
            raise ObjectError(f"user metadata name {name!r} of '{key}' cannot be stored on S3",
                              hint="names must be ASCII letters, digits, '-', '_' or '.'")
        user[name] = _encode_meta_value(value)
    headers["Metadata"] = user
    return headers


def _part_size(size: int, part_size: int) -> int:
    """``part_size`` moved inside S3's limits (5 MiB..5 GiB, at most 10,000 parts)."""
    part_size = min(max(part_size, MIN_PART_SIZE), MAX_PART_SIZE)
    if size > part_size * MAX_PARTS:
        mib = 1024 * 1024
        per_part = -(-size // MAX_PARTS)
        part_size = -(-per_part // mib) * mib
    return part_size


def _read_exactly(key: str, stream: ByteStream, body: bytearray) -> None:
    """Fill ``body`` with all of a small object's bytes, refusing a source that is shorter or
    longer than listed (without reading more than one byte past the end)."""
    size = len(body)
    got = stream.readinto(body) if size else 0
    if got != size or stream.read(1):
        told = f"{got}" if got != size else f"more than {size}"
        raise SourceChangedError(f"'{key}' has {told} bytes, {size} were listed; "
                                 "the source changed")


def _finished_ok(pending: set[Future[Any]]) -> set[Future[Any]]:
    """The part uploads still running; raises the error of one that failed."""
    running = set()
    for fut in pending:
        if not fut.done():
            running.add(fut)
        elif fut.exception() is not None:
            raise fut.exception()  # type: ignore[misc]
    return running


def _expect_continue(params: dict[str, Any], **_: Any) -> None:
    """``Expect: 100-continue`` on a bytearray body too, as botocore sends it with every
    file-like one: the server can refuse the request (wrong region, bad credentials) before
    the body goes, and its error reaches us instead of a reset connection."""
    body = params.get("body")
    if isinstance(body, bytearray) and body:
        params["headers"]["Expect"] = "100-continue"


def _check_source(key: str, sums: Mapping[str, str], source: Mapping[str, str]) -> None:
    bad = mismatch(sums, source)
    if bad is not None:
        raise IntegrityError(f"{bad} of the bytes read for '{key}' ({sums[bad]}) differs from "
                             f"the source's {bad} ({source[bad]}); nothing was written")


def _etag_checksums(etag: str | None) -> dict[str, str]:
    """``{"md5": etag}`` when the ETag is a plain MD5 (single-part upload, no SSE-KMS/C)."""
    if etag and _HEX_MD5.match(etag):
        return {"md5": etag.lower()}
    return {}


def _etag_not_md5(resp: Mapping[str, Any]) -> bool:
    return resp.get("ServerSideEncryption") in _KMS_SSE or bool(
        resp.get("SSECustomerAlgorithm"))


def _unquote(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _is_missing(exc: ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in _MISSING_CODES


def _is_aws(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn")) or host == "amazonaws.com"


def _display_url(url: str) -> str:
    """The endpoint URL for messages, without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
