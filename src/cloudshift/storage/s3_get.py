"""GetObject on the common path, signed and sent by botocore's own parts, without a client call.

A copy out of S3 spends most of its CPU in botocore's per-call machinery: ~4.5 ms for a 64 KiB
GetObject against moto (event hooks, parameter handling, endpoint rules, response parsing),
of which signing and sending take ~2 ms. Here the request goes to the URL the client itself
presigns, is signed by botocore's S3 SigV4 signer with the session's (refreshing)
credentials, and is sent through the client's own HTTP session (same pool, proxies,
certificates and timeouts).

Only a 200 answer is used. Anything else (a missing key, a throttle, a server error, a
redirect to another region) is reported as None and the caller makes the same request
through the client, so retries, region redirects and error messages stay botocore's. An
answer that suggests this path itself is wrong for the bucket (a redirect, a 400, a 403)
turns it off for the store.

Checksums: the request asks for the object's stored checksum (``x-amz-checksum-mode``), as
the client does. CRC32C goes into the object's checksums, which the engine compares with the
bytes it read; CRC32, SHA-1 and SHA-256 are checked here as the body streams, as botocore
would; an object with only a CRC64-NVME checksum goes through the client.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, FlexibleChecksumError
from botocore.response import StreamingBody

from cloudshift.storage.base import RequestObserver

_PROBE = "cloudshift-presign-probe"
# Statuses that say nothing about this path: the client retries or reports them.
_PASS_ON = frozenset({404, 412, 429, 500, 502, 503, 504})
_HEADERS = {
    "etag": "ETag", "content-type": "ContentType", "content-encoding": "ContentEncoding",
    "content-disposition": "ContentDisposition", "cache-control": "CacheControl",
    "content-language": "ContentLanguage", "x-amz-storage-class": "StorageClass",
    "x-amz-server-side-encryption": "ServerSideEncryption",
    "x-amz-server-side-encryption-customer-algorithm": "SSECustomerAlgorithm",
    "x-amz-checksum-crc32c": "ChecksumCRC32C", "x-amz-checksum-type": "ChecksumType",
    "last-modified": "LastModified",
}
_META = "x-amz-meta-"


class LeanGet:
    def __init__(self, client: Any, credentials: Any, base: str, region: str,
                 observer: RequestObserver | None, timestamp: Any) -> None:
        self._creds = credentials
        self._base = base
        self._region = region
        self._http = client._endpoint.http_session
        self._observer = observer
        self._timestamp = timestamp
        self._on = True

    @classmethod
    def build(cls, client: Any, session: Any, bucket: str, observer: RequestObserver | None,
              timestamp: Any) -> LeanGet | None:
        """For a client with credentials and a plain presigned URL; None otherwise (then
        every GetObject goes through the client)."""
        try:
            creds = session.get_credentials()
            if creds is None or getattr(client._endpoint, "http_session", None) is None:
                return None
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": _PROBE}, ExpiresIn=60)
        except Exception:  # any doubt: use the client
            return None
        base = url.split("?", 1)[0]
        if not base.endswith("/" + _PROBE):
            return None
        return cls(client, creds, base[:-len(_PROBE)], client.meta.region_name or "us-east-1",
                   observer, timestamp)

    @property
    def on(self) -> bool:
        return self._on

    def get(self, key: str) -> dict[str, Any] | None:
        """The GetObject answer as the client would parse it (the fields this package
        reads), with a streaming ``Body``; None when the client should make the request."""
        if not self._on:
            return None
        request = AWSRequest(method="GET", url=self._base + quote(key, safe="/~"),
                             headers={"x-amz-checksum-mode": "ENABLED"}, stream_output=True)
        S3SigV4Auth(self._creds.get_frozen_credentials(), "s3", self._region).add_auth(request)
        if self._observer is not None:
            self._observer.before_request()
        try:
            response = self._http.send(request.prepare())
        except BotoCoreError:
            return None   # the client retries connection trouble with its backoff
        status = int(response.status_code)
        if self._observer is not None:
            self._observer.after_response(status)
        if status != 200:
            response.raw.drain_conn()   # a short error document; the connection is reused
            response.raw.release_conn()
            if status not in _PASS_ON:
                self._on = False
            return None
        headers = response.headers
        extra = _body_checksum(headers)
        if extra == "unsupported":
            response.raw.close()
            return None
        parsed = _parse(headers, self._timestamp)
        body = StreamingBody(response.raw, parsed["ContentLength"])
        parsed["Body"] = body if extra is None else _CheckedBody(body, *extra)
        return parsed


def _parse(headers: Mapping[str, str], timestamp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ContentLength": int(headers.get("content-length", 0)),
                           "Metadata": {}}
    for name, value in headers.items():
        low = name.lower()
        if low.startswith(_META):
            out["Metadata"][low[len(_META):]] = value
        elif low in _HEADERS:
            out[_HEADERS[low]] = value
    if "LastModified" in out:
        out["LastModified"] = timestamp(out["LastModified"])
    return out


_HASHES = {"x-amz-checksum-crc32": "crc32", "x-amz-checksum-sha1": "sha1",
           "x-amz-checksum-sha256": "sha256"}


def _body_checksum(headers: Mapping[str, str]) -> tuple[str, str] | str | None:
    """(algorithm, expected base64) to check while streaming; None when there is nothing
    to check here; "unsupported" when only the client can check it."""
    if headers.get("x-amz-checksum-type", "FULL_OBJECT").upper() != "FULL_OBJECT":
        return None   # a checksum of part checksums: the client does not check it either
    for header, algo in _HASHES.items():
        value = headers.get(header)
        if value and "-" not in value:
            return algo, value
    if headers.get("x-amz-checksum-crc64nvme") and not headers.get("x-amz-checksum-crc32c"):
        return "unsupported"
    return None


class _CheckedBody:
    """A StreamingBody whose bytes are checked against the stored checksum at the end."""

    def __init__(self, body: StreamingBody, algo: str, expected: str) -> None:
        self._body = body
        self._algo = algo
        self._expected = expected

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        crc = 0
        digest = hashlib.new(self._algo) if self._algo != "crc32" else None
        for chunk in self._body.iter_chunks(chunk_size):
            if digest is None:
                crc = zlib.crc32(chunk, crc)
            else:
                digest.update(chunk)
            yield chunk
        raw = crc.to_bytes(4, "big") if digest is None else digest.digest()
        got = base64.b64encode(raw).decode("ascii")
        if got != self._expected:
            raise FlexibleChecksumError(error_msg=f"Expected checksum {self._expected} did not "
                                                  f"match calculated checksum: {got}")

    def close(self) -> None:
        self._body.close()
