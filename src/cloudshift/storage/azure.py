"""``az://container/prefix``: Azure Blob Storage (block blobs) through azure-storage-blob.

Credentials come from the environment (see :func:`resolve_credentials`); ``endpoint`` overrides
the account's blob endpoint (Azurite, sovereign clouds, private endpoints). Checksums: Azure
keeps one whole-object MD5 per blob (``Content-MD5``). For single-request uploads the service
computes it; for block uploads we compute it while streaming, every block carries a
transactional MD5 the service checks, and the whole-object value is stored with the commit.
See docs/backends/azure.md for metadata name encoding, listing order and Azurite notes.

Nothing that leaves this module quotes the SDK's own exception text: it can carry request URLs
with SAS signatures in them. Messages are built here from the status, the error code and a
sanitised endpoint.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
)
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import DistributedTracingPolicy, HttpLoggingPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.settings import settings as azure_settings
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cloudshift.core.checksums import b64_to_hex, hex_to_b64, mismatch
from cloudshift.core.errors import (
    CloudshiftError,
    ConfigError,
    IntegrityError,
    ObjectError,
    SourceChangedError,
)
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

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ENV_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
ENV_KEY = "AZURE_STORAGE_KEY"
ENV_SAS = "AZURE_STORAGE_SAS_TOKEN"

# Azurite's well-known development account (public, from Microsoft's documentation); used only
# for the connection string shortcut ``UseDevelopmentStorage=true``.
_DEV_ACCOUNT = "devstoreaccount1"
_DEV_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
            "KBHBeksoGMGw==")
_DEV_ENDPOINT = f"http://127.0.0.1:10000/{_DEV_ACCOUNT}"

# Connections kept open per host. The engine calls one store from a thread pool; urllib3
# opens extra connections beyond this when needed but then discards them after use.
MAX_CONNECTIONS = 64
_CONNECT_TIMEOUT = 20.0  # seconds (the SDK's default)
_READ_TIMEOUT = 60.0
# check(): no retries of connection failures, short timeouts, so a wrong endpoint fails in
# seconds rather than after the SDK's exponential backoff (15 s, 18 s, 24 s...).
_CHECK_CONNECT_TIMEOUT = 5.0
_CHECK_READ_TIMEOUT = 10.0

# Downloads: the SDK fetches the first range with max_single_get_size (default 32 MiB) and
# then max_chunk_get_size ranges, one GET each, holding one range in memory.
_GET_SIZE = 4 * 1024 * 1024
# Objects up to this size go out as one Put Blob whose response Content-MD5 the service
# computed itself; above it upload_blob would split into blocks (the SDK's own default).
_SINGLE_PUT_MAX = 64 * 1024 * 1024
_MAX_BLOCKS = 50_000
_MAX_BLOCK_SIZE = 4000 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Metadata names and values.
#
# Azure metadata names must be C# identifiers (ASCII letters, digits, "_", not starting with a
# digit) and are case-insensitive; values travel as HTTP header values (ASCII; surrounding
# whitespace is trimmed). Provider-neutral names are lower-case and may hold "-", "." or
# non-ASCII, values may be any text, so both are encoded reversibly:
#   * a name that is already a valid identifier and does not start with "csx_" is kept;
#     any other name is "csx_" + lower-case hex of its UTF-8 bytes ("x-origin" ->
#     "csx_782d6f726967696e"). On read a "csx_..." name is decoded only when re-encoding the
#     result gives the same name back, so names written by other tools stay as they are.
#   * a value that is printable ASCII without surrounding whitespace is kept; any other value
#     (non-ASCII, control characters, surrounding spaces, empty, or one that itself looks
#     like an encoded word) is written as one RFC 2047 encoded word "=?UTF-8?B?<base64>?=".
# ---------------------------------------------------------------------------------------------

NAME_MARKER = "csx_"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX_PAIRS = re.compile(r"(?:[0-9a-f]{2})*")
_PLAIN_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/]*={0,2})\?=", re.IGNORECASE)


def encode_meta_name(name: str) -> str:
    """A valid Azure metadata name for the provider-neutral ``name`` (see module notes)."""
    name = name.lower()
    if _IDENTIFIER.fullmatch(name) and not name.startswith(NAME_MARKER):
        return name
    return NAME_MARKER + name.encode("utf-8").hex()


def decode_meta_name(name: str) -> str:
    """Inverse of :func:`encode_meta_name`; other names come back lower-cased, unchanged."""
    lowered = name.lower()
    if lowered.startswith(NAME_MARKER):
        rest = lowered[len(NAME_MARKER):]
        if _HEX_PAIRS.fullmatch(rest):
            try:
                decoded = bytes.fromhex(rest).decode("utf-8")
            except UnicodeDecodeError:
                return lowered
            if encode_meta_name(decoded) == lowered:
                return decoded
    return lowered


def encode_meta_value(value: str) -> str:
    """A header-safe value for ``value``: itself when plain ASCII, else an RFC 2047 word."""
    if _PLAIN_VALUE.fullmatch(value) and not (value.startswith("=?") and value.endswith("?=")):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_meta_value(value: str) -> str:
    """Inverse of :func:`encode_meta_value` (also reads encoded words other tools wrote)."""
    m = _ENCODED_WORD.fullmatch(value)
    if m is None:
        return value
    try:
        return base64.b64decode(m.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


def encode_metadata(user: Mapping[str, str]) -> dict[str, str]:
    """Provider-neutral user metadata -> what Azure accepts."""
    return {encode_meta_name(k): encode_meta_value(v) for k, v in user.items()}


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Azure metadata -> provider-neutral user metadata (lower-case names, decoded values)."""
    return {decode_meta_name(k): decode_meta_value(v) for k, v in metadata.items()}


def _encode_header(value: str | None) -> str | None:
    return None if not value else encode_meta_value(value)


def _decode_header(value: str | None) -> str | None:
    return None if not value else decode_meta_value(value)


# ---------------------------------------------------------------------------------------------
# Credentials and endpoint.
# ---------------------------------------------------------------------------------------------

Credential = AzureNamedKeyCredential | AzureSasCredential | None


@dataclass(frozen=True)
class AzureCredentials:
    account_url: str
    credential: Credential
    account: str | None

    def __repr__(self) -> str:  # never show a key or SAS
        return f"AzureCredentials(account_url={display_url(self.account_url)!r})"


def display_url(url: str) -> str:
    """``url`` without user info, query (SAS) or fragment: safe to print."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid endpoint URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")


def _check_url(url: str, where: str) -> str:
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"the Azure endpoint given by {where} is not an http(s) URL",
                          hint="e.g. https://ACCOUNT.blob.core.windows.net or "
                               "http://127.0.0.1:10000/devstoreaccount1")
    return url.strip()


def _parse_connection_string(conn: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for part in conn.strip().split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{ENV_CONNECTION_STRING} is malformed",
                              hint="expected Name=value pairs separated by ';' as the Azure "
                                   "portal shows them under 'Access keys'")
        settings[name.strip().lower()] = value.strip()
    return settings


def _sas(token: str) -> AzureSasCredential:
    return AzureSasCredential(token.strip().lstrip("?"))


def resolve_credentials(endpoint: str | None = None,
                        env: Mapping[str, str] | None = None) -> AzureCredentials:
    """Credentials in this order: ``AZURE_STORAGE_CONNECTION_STRING``; else
    ``AZURE_STORAGE_ACCOUNT`` with ``AZURE_STORAGE_KEY`` (shared key) or
    ``AZURE_STORAGE_SAS_TOKEN``. ``endpoint`` overrides the endpoint they imply."""
    env = os.environ if env is None else env
    if endpoint is not None:
        endpoint = _check_url(endpoint, "--src-endpoint/--dst-endpoint")
    conn = env.get(ENV_CONNECTION_STRING, "").strip()
    if conn:
        s = _parse_connection_string(conn)
        if s.get("usedevelopmentstorage", "").lower() == "true":
            return AzureCredentials(endpoint or _DEV_ENDPOINT,
                                    AzureNamedKeyCredential(_DEV_ACCOUNT, _DEV_KEY), _DEV_ACCOUNT)
        account = s.get("accountname") or None
        url = endpoint
        if url is None and s.get("blobendpoint"):
            url = _check_url(s["blobendpoint"], f"{ENV_CONNECTION_STRING} (BlobEndpoint)")
        if url is None and account:
            protocol = s.get("defaultendpointsprotocol", "https") or "https"
            suffix = s.get("endpointsuffix", "core.windows.net") or "core.windows.net"
            url = f"{protocol}://{account}.blob.{suffix}"
        if url is None:
            raise ConfigError(f"{ENV_CONNECTION_STRING} names neither AccountName nor "
                              "BlobEndpoint", hint="copy the full connection string from the "
                                                   "storage account's 'Access keys' page")
        credential: Credential = None
        if s.get("accountkey"):
            if not account:
                raise ConfigError(f"{ENV_CONNECTION_STRING} has an AccountKey but no "
                                  "AccountName", hint="add AccountName=... to it")
            credential = AzureNamedKeyCredential(account, s["accountkey"])
        elif s.get("sharedaccesssignature"):
            credential = _sas(s["sharedaccesssignature"])
        return AzureCredentials(url, credential, account)
    account = env.get(ENV_ACCOUNT, "").strip()
    key = env.get(ENV_KEY, "").strip()
    sas = env.get(ENV_SAS, "").strip()
    if not account:
        raise ConfigError("no Azure credentials found",
                          hint=f"set {ENV_CONNECTION_STRING}, or {ENV_ACCOUNT} with "
                               f"{ENV_KEY} or {ENV_SAS}")
    url = endpoint or f"https://{account}.blob.core.windows.net"
    if key:
        return AzureCredentials(url, AzureNamedKeyCredential(account, key), account)
    if sas:
        return AzureCredentials(url, _sas(sas), account)
    raise ConfigError(f"{ENV_ACCOUNT} is set but neither {ENV_KEY} nor {ENV_SAS}",
                      hint=f"set {ENV_KEY} to an account key or {ENV_SAS} to a SAS token, "
                           f"or {ENV_CONNECTION_STRING} instead")


def _retry_policy() -> ExponentialRetry:
    """The SDK's default waits 15 s, then 18 s, then 24 s between attempts: far too long for
    a throttled or reset request in a run of many objects (the engine retries objects too).
    About 1, 3, 5, 9, 17 s here, with jitter."""
    return ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=5,
                            random_jitter_range=1)


class _PoolAdapter(HTTPAdapter):
    """requests adapter with a large pool and 64 KiB socket writes (the default 8-16 KiB
    blocks slow down uploads); retries are left to the SDK's retry policy."""

    def __init__(self, pool_size: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_size,
                         max_retries=Retry(total=False, redirect=False, raise_on_status=False))

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("blocksize", 64 * 1024)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


class _LeanSession(requests.Session):
    """A session for one endpoint. ``Session.request`` redoes per request what is fixed for a
    run (proxy, NO_PROXY and CA bundle lookups in the environment, netrc, cookie jars, hooks):
    ~0.5 ms of CPU per request, more than all the rest of requests' work. Here the environment
    is read once, for the endpoint's host, with the same rules (HTTPS_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE keep working). azure-core follows redirects itself."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.proxies.update(requests.utils.get_environ_proxies(endpoint))
        self.ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self.trust_env = False

    def request(self, method: str, url: str | bytes,
                params: Any = None, data: Any = None, headers: Any = None, cookies: Any = None,
                files: Any = None, auth: Any = None, timeout: Any = None,
                allow_redirects: bool = True, proxies: Any = None, hooks: Any = None,
                stream: bool | None = None, verify: Any = None, cert: Any = None,
                json: Any = None) -> requests.Response:
        if verify is None or verify is True:
            verify = self.ca_bundle or True  # as requests does with trust_env
        proxies = {**self.proxies, **proxies} if proxies else self.proxies
        if (params or cookies or files or auth or hooks or json is not None or allow_redirects
                or not isinstance(url, str)):
            return super().request(method, url, params, data, headers, cookies, files, auth,
                                   timeout, allow_redirects, proxies, hooks, stream, verify,
                                   cert, json)
        prep = requests.PreparedRequest()
        prep.prepare_method(method.upper())
        prep.prepare_url(url, None)
        merged = requests.structures.CaseInsensitiveDict(self.headers)  # the defaults
        merged.update(headers or {})
        prep.prepare_headers({k: v for k, v in merged.items() if v is not None})
        prep.prepare_body(data or {}, None)
        response = self.get_adapter(prep.url or url).send(
            prep, stream=bool(stream), timeout=timeout, verify=verify, cert=cert,
            proxies=proxies)
        if not stream:
            response.content  # noqa: B018 - read the body now, as Session.send does
        return response


def _put_pipeline(pipeline: Pipeline[Any, Any]) -> Pipeline[Any, Any]:
    """``pipeline`` without the policies that only cost CPU per request here: tracing while
    it is off, HTTP logging while its logger is off."""
    idle: list[type] = []
    if not azure_settings.tracing_enabled() and azure_settings.tracing_implementation() is None:
        idle.append(DistributedTracingPolicy)
    if not logging.getLogger(
            "azure.core.pipeline.policies.http_logging_policy").isEnabledFor(logging.INFO):
        idle.append(HttpLoggingPolicy)
    try:
        policies = [getattr(p, "_policy", p) for p in pipeline._impl_policies]
        transport = pipeline._transport
    except AttributeError:  # another azure-core layout: use the pipeline as it is
        return pipeline
    return Pipeline(transport, policies=[p for p in policies if not isinstance(p, tuple(idle))])


def _code(exc: AzureError) -> str:
    code = getattr(exc, "error_code", None)
    if isinstance(code, Enum):
        code = code.value
    return str(code) if code else ""


def _status(exc: AzureError) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _etag(value: object) -> str | None:
    """ETags without quotes: get_blob_properties quotes them, list_blobs does not."""
    return value.strip('"') if isinstance(value, str) and value else None


def _network_reason(exc: AzureError) -> str:
    """A short reason for a failed connection, from exception types and well-known phrases
    only (the exception texts themselves can hold request URLs, never printed)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        todo += [getattr(e, "inner_exception", None), e.__cause__, e.__context__]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    text = " ".join(f"{type(e).__name__} {e}" for e in seen).lower()
    if isinstance(exc, ServiceRequestTimeoutError) or "timeout" in text or "timed out" in text:
        return "the connection timed out"
    if "refused" in text:
        return "connection refused"
    if any(w in text for w in ("name or service not known", "nodename nor servname",
                               "getaddrinfo", "name resolution", "no address associated")):
        return "the host name does not resolve (wrong account name or endpoint?)"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "the connection failed"


def _label(exc: AzureError) -> str:
    """"HTTP 500 InternalError" or the exception's class name: never the SDK's message."""
    status, code = _status(exc), _code(exc)
    label = " ".join(p for p in (f"HTTP {status}" if status else "", code) if p)
    return label or type(exc).__name__


def _response_error(response: HttpResponse) -> HttpResponseError:
    """The exception the SDK raises for a failed response (class by status and error code,
    ``error_code`` from the x-ms-error-code header), for requests we send ourselves."""
    status, code = response.status_code, response.headers.get("x-ms-error-code") or None
    cls: type[HttpResponseError] = HttpResponseError
    if status == 412 or code == "ConditionNotMet":
        cls = ResourceModifiedError
    elif status == 401 or code in _AUTH_CODES:
        cls = ClientAuthenticationError
    elif status == 404:
        cls = ResourceNotFoundError
    elif status == 409:
        cls = ResourceExistsError
    err = cls(message=f"HTTP {status}", response=response)
    err.error_code = code  # type: ignore[attr-defined]
    return err


_AUTH_CODES = {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
_DENIED_CODES = {"AuthorizationPermissionMismatch",
                 "AuthorizationProtocolMismatch", "AuthorizationSourceIPMismatch",
                 "AuthorizationServiceMismatch", "AuthorizationResourceTypeMismatch",
                 "InsufficientAccountPermissions", "KeyBasedAuthenticationNotPermitted"}
_CREDENTIAL_HINT = (f"check the AccountKey/SharedAccessSignature in {ENV_CONNECTION_STRING}, "
                    f"or {ENV_KEY} / {ENV_SAS}; a SAS may have expired")


# ---------------------------------------------------------------------------------------------
# The store.
# ---------------------------------------------------------------------------------------------


class AzureStore(Store):
    """One Azure Blob container (and optional prefix). Thread-safe: all calls share one
    service client, whose pipeline and connection pool are safe to use from many threads."""

    # No ranged_list: List Blobs resumes only from the opaque marker of an earlier page.
    features = Features(metadata=True, cleanup_incomplete=True, server_side_copy=True,
                        page_blobs=True)

    def __init__(self, loc: Location, *, endpoint: str | None = None,
                 max_connections: int = MAX_CONNECTIONS,
                 observer: RequestObserver | None = None, timeout: float | None = None
                 ) -> None:
        self.uri = str(loc)
        self._container_name = loc.bucket
        self._prefix = loc.prefix
        creds = resolve_credentials(endpoint)
        self._account = creds.account
        self._endpoint = display_url(creds.account_url)
        self._session = _LeanSession(creds.account_url)
        adapter = _PoolAdapter(max_connections)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        observe_session(self._session, observer)
        transport = RequestsTransport(
            session=self._session, session_owner=False,
            connection_timeout=_CONNECT_TIMEOUT if timeout is None else min(timeout, 10.0),
            read_timeout=_READ_TIMEOUT if timeout is None else timeout)
        try:
            self._service = BlobServiceClient(
                creds.account_url, credential=creds.credential, transport=transport,
                max_single_get_size=_GET_SIZE, max_chunk_get_size=_GET_SIZE,
                max_single_put_size=_SINGLE_PUT_MAX, retry_policy=_retry_policy())
        except ValueError:
            raise ConfigError(f"cannot use the Azure endpoint {self._endpoint}",
                              hint="give an http(s) URL of a blob service") from None
        self._container = self._service.get_container_client(loc.bucket)
        # Single-request uploads go straight through the container's pipeline (auth, retries,
        # observer): building a BlobClient and the SDK's upload layers cost more CPU than the
        # request itself for small blobs.
        self._pipeline = _put_pipeline(self._container._pipeline)
        # Client request ids for those uploads: unique, without uuid1's cost per request.
        self._request_ids = map(f"{uuid.uuid4().hex}-{{:x}}".format, itertools.count())
        self._api_version = self._container.api_version
        self._container_url, _, query = self._container.url.partition("?")
        self._url_query = f"?{query}" if query else ""

    def __repr__(self) -> str:
        return f"AzureStore({self.uri!r}, endpoint={self._endpoint!r})"

    def close(self) -> None:
        """Close pooled connections (optional; the store is unusable afterwards)."""
        self._session.close()

    # -- helpers ----------------------------------------------------------------------------

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(self._prefix + key)

    def _blob_url(self, key: str) -> str:
        # As BlobClient quotes names.
        return (f"{self._container_url}/{quote(self._prefix + key, safe='~/')}"
                f"{self._url_query}")

    def _where(self) -> str:
        return f"container '{self._container_name}' at {self._endpoint}"

    def _error(self, exc: AzureError, doing: str, key: str | None = None) -> CloudshiftError:
        """Our own one-line error for an SDK error (never quoting the SDK's text)."""
        code, status = _code(exc), _status(exc)
        what = f"'{key}'" if key is not None else self._where()
        if isinstance(exc, ServiceRequestError):
            # After the SDK's retries; check() turns this into a ConfigError instead.
            return ObjectError(f"cannot reach {self._endpoint} while {doing} {what}: "
                               f"{_network_reason(exc)}")
        if isinstance(exc, ServiceResponseError):
            return ObjectError(f"connection to {self._endpoint} failed while {doing} {what} "
                               f"({type(exc).__name__})")
        if code == "ContainerNotFound":
            return ConfigError(f"Azure container '{self._container_name}' does not exist at "
                               f"{self._endpoint}",
                               hint="create it with 'az storage container create --name "
                                    f"{self._container_name}', or fix the URI")
        if code in _AUTH_CODES or (isinstance(exc, ClientAuthenticationError)
                                   and code not in _DENIED_CODES):
            account = f" for account '{self._account}'" if self._account else ""
            return ConfigError(f"Azure rejected the credentials{account} at {self._endpoint}"
                               + (f" ({code})" if code else ""), hint=_CREDENTIAL_HINT)
        if code == "AuthorizationFailure":
            # Real Azure: network rules, disabled key access...; Azurite: also a wrong key.
            return ConfigError(f"Azure refused access to {self._where()} ({code})",
                               hint="check the account key or SAS, and the account's "
                                    "firewall and network rules")
        if code in _DENIED_CODES or status == 403:
            return ConfigError(f"Azure denied {doing} {what} ({code or 'HTTP 403'})",
                               hint="the key, SAS or role lacks the permission; a SAS needs "
                                    "r and l to read, w and d to write and delete")
        if code in ("Md5Mismatch", "Crc64Mismatch", "InvalidMd5"):
            return IntegrityError(f"Azure rejected the bytes of {what}: the checksum sent "
                                  f"with them does not match ({code})")
        if isinstance(exc, ResourceModifiedError) or code == "ConditionNotMet":
            return SourceChangedError(f"{what} changed while {doing} it")
        return ObjectError(f"{doing} {what} failed on Azure ({_label(exc)})")

    def _info(self, key: str, props: BlobProperties) -> ObjectInfo:
        cs = props.content_settings
        md5 = b64_to_hex(cs.content_md5) if cs is not None and cs.content_md5 else None
        user, mtime = split_user_meta(decode_metadata(props.metadata or {}))
        meta = ObjectMeta(
            content_type=_decode_header(cs.content_type) if cs is not None else None,
            content_encoding=_decode_header(cs.content_encoding) if cs is not None else None,
            content_disposition=(_decode_header(cs.content_disposition)
                                 if cs is not None else None),
            cache_control=_decode_header(cs.cache_control) if cs is not None else None,
            content_language=_decode_header(cs.content_language) if cs is not None else None,
            user=user, mtime=mtime)
        tier: Any = props.blob_tier
        if isinstance(tier, Enum):
            tier = tier.value
        return ObjectInfo(key=key, size=int(props.size or 0), mtime=props.last_modified,
                          etag=_etag(props.etag), checksums={"md5": md5} if md5 else {},
                          storage_class=str(tier) if tier else None, meta=meta)

    @staticmethod
    def _content_settings(meta: ObjectMeta, md5_hex: str | None) -> ContentSettings:
        return ContentSettings(
            content_type=_encode_header(meta.content_type),
            content_encoding=_encode_header(meta.content_encoding),
            content_language=_encode_header(meta.content_language),
            content_disposition=_encode_header(meta.content_disposition),
            cache_control=_encode_header(meta.cache_control),
            content_md5=bytearray(bytes.fromhex(md5_hex)) if md5_hex else None)

    # -- the protocol -----------------------------------------------------------------------

    def check(self) -> None:
        # One request: Get Container Properties. A container-level SAS may not read container
        # properties (403 AuthorizationPermissionMismatch) yet list and read blobs; only then
        # a one-item listing decides instead.
        opts: dict[str, Any] = {"retry_connect": 0, "retry_read": 0,
                                "connection_timeout": _CHECK_CONNECT_TIMEOUT,
                                "read_timeout": _CHECK_READ_TIMEOUT}
        try:
            try:
                self._container.get_container_properties(**opts)
            except HttpResponseError as exc:
                if _code(exc) not in ("AuthorizationPermissionMismatch",
                                      "AuthorizationResourceTypeMismatch"):
                    raise
                pages = self._container.list_blobs(results_per_page=1, **opts).by_page()
                next(iter(pages), None)
        except ServiceRequestError as exc:
            raise ConfigError(f"cannot reach the Azure Blob endpoint {self._endpoint}: "
                              f"{_network_reason(exc)}",
                              hint="check --src-endpoint/--dst-endpoint, the BlobEndpoint of "
                                   f"{ENV_CONNECTION_STRING} or {ENV_ACCOUNT}, and the "
                                   "network") from None
        except ServiceResponseError as exc:
            raise ConfigError(f"the Azure Blob endpoint {self._endpoint} did not answer "
                              f"({type(exc).__name__})",
                              hint="check the endpoint and the network") from None
        except AzureError as exc:
            err = self._error(exc, "reading")
            if isinstance(err, ConfigError):
                raise err from None
            raise ConfigError(f"cannot use {self._where()} ({_label(exc)})",
                              hint="is this an Azure Blob endpoint?") from None

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        return after(_code_point_order(self._list_raw()), start_after)

    def _list_raw(self) -> Iterator[ObjectInfo]:
        cut = len(self._prefix)
        try:
            for props in self._container.list_blobs(name_starts_with=self._prefix or None,
                                                    include=["metadata"]):
                if len(props.name) == cut:
                    continue  # a blob named exactly like the prefix ("photos/"): no key
                metadata = props.metadata or {}
                if props.size == 0 and any(k.lower() == "hdi_isfolder" and v.lower() == "true"
                                           for k, v in metadata.items()):
                    continue  # directory entry of a hierarchical-namespace (ADLS Gen2) account
                yield self._info(props.name[cut:], props)
        except AzureError as exc:
            raise self._error(exc, "listing") from None

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            props = self._blob(key).get_blob_properties()
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise self._error(exc, "reading", key) from None
            return None
        except AzureError as exc:
            raise self._error(exc, "reading the properties of", key) from None
        return self._info(key, props)

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        blob = self._blob(key)
        try:
            # decompress=False: a blob stored with Content-Encoding: gzip must come back as
            # the stored bytes (the ones its MD5 and size describe), not inflated. Ranges after
            # the first carry If-Match with the first response's ETag (SDK behaviour), so an
            # overwrite during the read fails with 412 -> SourceChangedError.
            downloader = blob.download_blob(max_concurrency=1, decompress=False)
            pending = b""
            for piece in downloader.chunks():
                data = pending + piece if pending else piece
                start = 0
                while len(data) - start >= chunk_size:
                    yield data[start:start + chunk_size]
                    start += chunk_size
                pending = data[start:]
            if pending:
                yield pending
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise self._error(exc, "reading", key) from None
            raise FileNotFoundError(f"{self.uri}{key}") from None
        except AzureError as exc:
            raise self._error(exc, "reading", key) from None

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        metadata = encode_metadata(user_meta_for_write(meta))
        try:
            if size <= part_size:
                return self._write_single(key, stream, size, meta, metadata, checksums)
            return self._write_blocks(self._blob(key), key, stream, size, meta, metadata,
                                      checksums, part_size)
        except AzureError as exc:
            raise self._error(exc, "writing", key) from None

    def _write_single(self, key: str, stream: ByteStream, size: int, meta: ObjectMeta,
                      metadata: dict[str, str], checksums: Mapping[str, str]) -> ObjectInfo:
        data = stream.read(size) if size else b""
        if len(data) != size or stream.read(1):
            raise SourceChangedError(f"'{key}': the source no longer has the {size} bytes it "
                                     "was listed with")
        sums = stream.checksums()
        bad = mismatch(sums, checksums)
        if bad is not None:
            raise IntegrityError(f"'{key}': {bad} of the bytes read differs from the "
                                 f"source's {bad}; nothing was written")
        if size <= _SINGLE_PUT_MAX:
            return self._put_blob(key, data, meta, metadata, sums["md5"])
        # validate_content: the SDK sends Content-MD5 and the service rejects the request
        # (400 Md5Mismatch) when the bytes it received differ. content_md5 in the settings is
        # stored as the blob's Content-MD5 for later verification.
        blob = self._blob(key)
        try:
            blob.upload_blob(data, length=size, overwrite=True, validate_content="md5",
                             content_settings=self._content_settings(meta, sums["md5"]),
                             metadata=metadata, max_concurrency=1)
        except Exception:
            self._discard_uncommitted(blob)  # the SDK staged blocks itself
            raise
        # The SDK committed blocks: the answer carries the block list's MD5, not the blob's.
        return self._stored_info(blob, key)

    def _put_blob(self, key: str, data: bytes, meta: ObjectMeta, metadata: dict[str, str],
                  md5_hex: str) -> ObjectInfo:
        """One Put Blob, the request BlobClient.upload_blob would send. Content-MD5 (from the
        hash of exactly these bytes) makes the service reject a body that differs (400
        Md5Mismatch); x-ms-blob-content-md5 is stored as the blob's MD5."""
        md5 = hex_to_b64(md5_hex)
        headers = {"x-ms-version": self._api_version, "x-ms-blob-type": "BlockBlob",
                   "Content-Type": "application/octet-stream", "Accept": "application/xml",
                   "Content-Length": str(len(data)), "Content-MD5": md5,
                   "x-ms-blob-content-md5": md5}
        for name, value in (("x-ms-blob-content-type", meta.content_type),
                            ("x-ms-blob-content-encoding", meta.content_encoding),
                            ("x-ms-blob-content-language", meta.content_language),
                            ("x-ms-blob-content-disposition", meta.content_disposition),
                            ("x-ms-blob-cache-control", meta.cache_control)):
            if value:
                headers[name] = encode_meta_value(value)
        for name, value in metadata.items():
            headers[f"x-ms-meta-{name}"] = value
        request = HttpRequest("PUT", self._blob_url(key), headers=headers, content=data)
        response = self._pipeline.run(request,
                                      client_request_id=next(self._request_ids)).http_response
        if response.status_code != 201:
            raise _response_error(response)
        # The MD5 the service computed over the body it stored.
        stored = b64_to_hex(response.headers.get("Content-MD5"))
        if stored is None:
            return self._stored_info(self._blob(key), key)
        modified = response.headers.get("Last-Modified")
        return ObjectInfo(key=key, size=len(data), etag=_etag(response.headers.get("ETag")),
                          mtime=parsedate_to_datetime(modified) if modified else None,
                          checksums={"md5": stored}, meta=meta)

    def _write_blocks(self, blob: BlobClient, key: str, stream: ByteStream, size: int,
                      meta: ObjectMeta, metadata: dict[str, str],
                      checksums: Mapping[str, str], part_size: int) -> ObjectInfo:
        # Azure allows at most 50,000 blocks per blob: grow the part when needed.
        part = min(max(part_size, -(-size // _MAX_BLOCKS)), _MAX_BLOCK_SIZE)
        tag = uuid.uuid4().hex[:16]  # unique per upload: concurrent writers never share ids
        ids: list[str] = []
        try:
            while chunk := stream.read(part):
                if stream.bytes_read > size:
                    raise SourceChangedError(f"'{key}': the source grew beyond the {size} "
                                             "bytes it was listed with")
                # Block ids: base64 of a fixed-length string (all ids of a blob must have the
                # same length).
                block_id = base64.b64encode(f"{tag}{len(ids):08d}".encode()).decode("ascii")
                blob.stage_block(block_id, chunk, length=len(chunk), validate_content="md5")
                ids.append(block_id)
            if stream.bytes_read != size:
                raise SourceChangedError(f"'{key}': the source ended after "
                                         f"{stream.bytes_read} of {size} bytes")
            sums = stream.checksums()
            bad = mismatch(sums, checksums)
            if bad is not None:
                raise IntegrityError(f"'{key}': {bad} of the bytes read differs from the "
                                     f"source's {bad}; nothing was committed")
            blob.commit_block_list([BlobBlock(block_id=i) for i in ids],
                                   content_settings=self._content_settings(meta, sums["md5"]),
                                   metadata=metadata, validate_content=True)
        except Exception:
            if ids:
                self._discard_uncommitted(blob)
            raise
        # The commit's response MD5 is that of the block list: read back what was stored.
        return self._stored_info(blob, key)

    def _stored_info(self, blob: BlobClient, key: str) -> ObjectInfo:
        return self._info(key, blob.get_blob_properties())

    @staticmethod
    def _discard_uncommitted(blob: BlobClient) -> None:
        """Drop the blocks a failed upload staged, where that is safe.

        Uncommitted blocks are invisible to readers and listings, but Azure keeps them (and
        bills them, and counts them against the 100,000-uncommitted-block limit) until the
        blob is next committed (Put Blob or Put Block List discard every uncommitted block
        not in the list) or, failing that, garbage-collects them a week after the last Put
        Block. When no committed blob exists, committing an empty block list drops them, and
        we delete that empty blob at once (If-None-Match: * so we never replace a blob
        someone else committed meanwhile; If-Match on delete so we only remove our own).
        When a committed blob exists we leave the blocks: recommitting would change it.
        """
        try:
            resp = blob.commit_block_list([], match_condition=MatchConditions.IfMissing)
        except AzureError:
            return  # the blob exists (or the service is unreachable): leave it to Azure
        etag = resp.get("etag")
        try:
            if isinstance(etag, str):
                blob.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
            else:
                blob.delete_blob()
        except AzureError:
            pass

    def cleanup_incomplete(self, keys: Iterable[str]) -> int:
        """After a killed run: drop blocks staged for ``keys`` that never got committed
        (where no committed blob exists; otherwise the next commit of that key drops them).
        Returns how many blobs had uncommitted blocks."""
        found = 0
        for key in keys:
            blob = self._blob(key)
            try:
                _, uncommitted = blob.get_block_list("uncommitted")
            except AzureError:
                continue  # no blob and no blocks, or unreachable: nothing we can do here
            if uncommitted:
                found += 1
                self._discard_uncommitted(blob)
        return found

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete_blob()
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                raise self._error(exc, "deleting", key) from None
        except AzureError as exc:
            raise self._error(exc, "deleting", key) from None


# Code-point order from a listing in UTF-16 code-unit order (Azurite compares names as
# JavaScript strings, i.e. by UTF-16 code units) or in UTF-8 byte order (= code-point order).
# The orders differ only where, at the first differing position, one key has a character
# above U+FFFF (astral: a surrogate pair D800-DFFF in UTF-16) and the other one in
# U+E000..U+FFFF: UTF-16 puts the astral one first. Hence, with x the latest key listed:
#   * every later key is above x in code-point order too, unless x holds an astral
#     character; so a key without astral characters is final once nothing smaller waits;
#   * a later key can sort before an astral key p only if it starts with p[:j], where j is
#     p's first astral character; listings keep all keys with one prefix together, so once x
#     does not start with p[:j], nothing smaller than p can come any more.
# Keys wait in a heap until the smallest is final. Memory: the keys sorting after an astral
# key within its prefix before that character, until the listing leaves that prefix (only
# keys with U+D800 or above at that position sort after it: typically a handful).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _code_point_order(items: Iterable[ObjectInfo]) -> Iterator[ObjectInfo]:
    heap: list[tuple[str, int, str | None, ObjectInfo]] = []  # key, arrival, guard, info
    last: str | None = None

    def emit(info: ObjectInfo) -> ObjectInfo:
        nonlocal last
        if last is not None and info.key <= last:
            raise ConfigError(f"the Azure listing is out of order ('{info.key}' after "
                              f"'{last}')", hint="please report this with the two keys")
        last = info.key
        return info

    for n, info in enumerate(items):
        astral = _ASTRAL.search(info.key)
        guard = None if astral is None else info.key[:astral.start()]
        heapq.heappush(heap, (info.key, n, guard, info))
        while heap and (heap[0][2] is None or not info.key.startswith(heap[0][2])):
            yield emit(heapq.heappop(heap)[3])
    while heap:
        yield emit(heapq.heappop(heap)[3])
