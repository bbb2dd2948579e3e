"""AzureStore against a real Azurite over HTTP (no mocks)."""

from __future__ import annotations

import gzip
import hashlib
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import (
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)

from cloudshift.core.errors import ConfigError, IntegrityError
from cloudshift.core.uri import parse
from cloudshift.storage.azure import (
    ENV_ACCOUNT,
    ENV_CONNECTION_STRING,
    ENV_KEY,
    ENV_SAS,
    AzureStore,
    _code_point_order,
    _LeanSession,
    decode_meta_name,
    decode_meta_value,
    encode_meta_name,
    encode_meta_value,
)
from cloudshift.storage.base import ByteStream, ObjectInfo, ObjectMeta
from servers.azure import ACCOUNT, KEY, AzureServer

KIB = 1024
MIB = 1024 * KIB
SECRET_KEY = "c2VjcmV0LWtleS10aGF0LW11c3QtbmV2ZXItYmUtcHJpbnRlZC0xMjM0NTY3OA=="


def store(container: str, prefix: str = "", **kw: str) -> AzureStore:
    return AzureStore(parse(f"az://{container}/{prefix}"), **kw)


def stream(data: bytes, piece: int = 100_000) -> ByteStream:
    chunks = [data[i:i + piece] for i in range(0, len(data), piece)] or [b""]
    return ByteStream(iter(chunks))


def put(st: AzureStore, key: str, data: bytes, meta: ObjectMeta | None = None,
        part_size: int = 8 * MIB) -> ObjectInfo:
    return st.write(key, stream(data), size=len(data), meta=meta or ObjectMeta(),
                    checksums={}, part_size=part_size)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def container(server: AzureServer, name: str) -> ContainerClient:
    return server.client().get_container_client(name)


def no_trace_of(server: AzureServer, name: str, blob: str) -> None:
    """No committed blob and no uncommitted blocks under ``blob``."""
    c = container(server, name)
    assert not c.get_blob_client(blob).exists()
    assert [b.name for b in c.list_blobs(include=["uncommittedblobs"])] == []
    try:
        committed, uncommitted = c.get_blob_client(blob).get_block_list("all")
    except ResourceNotFoundError:
        return
    assert committed == [] and uncommitted == []


# -- round trips ---------------------------------------------------------------------------


def test_small_write_stores_the_content_md5(azure_server: AzureServer,
                                            azure_container: str) -> None:
    # (Round trips in general: test_store_conformance.py.)
    st = store(azure_container, "p")
    data = b"hello azure"
    info = put(st, "a/b.txt", data)
    assert info.checksums == {"md5": md5(data)}
    assert info.etag and not info.etag.startswith('"')
    blob = container(azure_server, azure_container).get_blob_client("p/a/b.txt")
    assert blob.download_blob().readall() == data
    props = blob.get_blob_properties()
    assert bytes(props.content_settings.content_md5).hex() == md5(data)
    got = st.stat("a/b.txt")
    assert got is not None and got.etag == info.etag and got.mtime == info.mtime


def test_block_upload_round_trip(azure_server: AzureServer, azure_container: str) -> None:
    st = store(azure_container)
    data = random.Random(1).randbytes(1300 * KIB)
    info = put(st, "big.bin", data, part_size=256 * KIB)
    assert info.size == len(data) and info.checksums == {"md5": md5(data)}
    blob = container(azure_server, azure_container).get_blob_client("big.bin")
    committed, uncommitted = blob.get_block_list("all")
    assert [b.size for b in committed] == [256 * KIB] * 5 + [20 * KIB]
    assert uncommitted == []
    assert bytes(blob.get_blob_properties().content_settings.content_md5).hex() == md5(data)
    chunks = list(st.read("big.bin", chunk_size=100_000))
    assert b"".join(chunks) == data
    assert all(len(c) == 100_000 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 100_000


def test_trailing_slash_keys_and_the_prefix_marker(azure_server: AzureServer,
                                                   azure_container: str) -> None:
    # (Odd keys in general: test_store_conformance.py.)
    st = store(azure_container, "root")
    keys = ["folder/", "a+b&c=d?e#f%20"]
    for i, key in enumerate(keys):
        put(st, key, f"data {i}".encode())
    names = {b.name for b in container(azure_server, azure_container).list_blobs()}
    assert names == {"root/" + k for k in keys}
    assert b"".join(st.read("folder/")) == b"data 0"
    # A folder-marker blob named exactly like the prefix has no relative key: not listed.
    container(azure_server, azure_container).upload_blob("root/", b"")
    assert [o.key for o in st.list()] == sorted(keys)


def test_gzip_encoded_blob_reads_back_stored_bytes(azure_server: AzureServer,
                                                   azure_container: str) -> None:
    st = store(azure_container)
    body = gzip.compress(b"compress me " * 1000)
    put(st, "page.html.gz", body, ObjectMeta(content_type="text/html", content_encoding="gzip"))
    # Not inflated on the way out: the bytes, size and MD5 are those stored.
    assert b"".join(st.read("page.html.gz")) == body


# -- listing -------------------------------------------------------------------------------


def test_listing_is_code_point_sorted_and_relative(azure_server: AzureServer,
                                                   azure_container: str) -> None:
    c = container(azure_server, azure_container)
    inside = ["a-b", "a/b", "a.b", "a0", "aZ", "a_b", "a b", "A", "a", "a/", "ab/c", "a~", "z",
              "é", "éx", "Ā", "\ue000", "\ufb01", "😀", "\U00010000x", "\U0010fffd", "x/\ue000",
              "x/😀"]
    outside = ["pre", "prefix/x", "pr/x", "zzz"]
    for key in inside:
        c.upload_blob("pre/" + key, b"x")
    for key in outside:
        c.upload_blob(key, b"y")
    listed = [o.key for o in store(azure_container, "pre").list()]
    assert listed == sorted(inside)  # Python compares str by code point
    everything = [o.key for o in store(azure_container).list()]
    assert everything == sorted(["pre/" + k for k in inside] + outside)


def test_listing_fills_info(azure_server: AzureServer, azure_container: str) -> None:
    st = store(azure_container)
    meta = ObjectMeta(content_type="text/plain", user={"x-origin": "s3://b/k"},
                      mtime=datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC))
    put(st, "small", b"abc", meta)
    put(st, "big", b"z" * (300 * KIB), meta, part_size=128 * KIB)
    infos = {o.key: o for o in st.list()}
    assert set(infos) == {"big", "small"}
    for key, data in (("small", b"abc"), ("big", b"z" * (300 * KIB))):
        o = infos[key]
        assert o.size == len(data) and o.checksums == {"md5": md5(data)}
        assert o.storage_class == "Hot" and o.etag and o.mtime is not None
        assert o.meta is not None and o.meta.content_type == "text/plain"
        assert o.meta.user == {"x-origin": "s3://b/k"} and o.meta.mtime == meta.mtime
        assert o.etag == st.stat(key).etag  # type: ignore[union-attr]


def test_listing_skips_hierarchical_namespace_folders(azure_server: AzureServer,
                                                      azure_container: str) -> None:
    c = container(azure_server, azure_container)
    c.upload_blob("dir", b"", metadata={"hdi_isfolder": "true"})
    c.upload_blob("dir/file", b"x")
    assert [o.key for o in store(azure_container).list()] == ["dir/file"]


def test_code_point_order_merge_from_utf16_order() -> None:
    alphabet = ["a", "b", "/", "-", "é", "\ud7ff", "\ue000", "\uffee", "😀", "\U00010000",
                "\U0010fffd"]
    for seed in range(5):
        rng = random.Random(seed)
        keys = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
                for _ in range(3000)}
        utf16 = sorted(keys, key=lambda k: k.encode("utf-16-be"))
        assert utf16 != sorted(keys)  # the input really is in a different order
        out = [o.key for o in _code_point_order(ObjectInfo(key=k, size=0) for k in utf16)]
        assert out == sorted(keys)
        utf8 = sorted(keys, key=lambda k: k.encode("utf-8"))
        assert [o.key for o in _code_point_order(ObjectInfo(key=k, size=0) for k in utf8)] \
            == utf8
    # Streaming: keys come out long before the listing ends.
    seen: list[str] = []

    def listing() -> Iterator[ObjectInfo]:
        for k in sorted((f"{i:05d}/x😀" for i in range(1000)), key=lambda k: k.encode("utf-16-be")):
            seen.append(k)
            yield ObjectInfo(key=k, size=0)

    first = next(iter(_code_point_order(listing())))
    assert first.key == "00000/x😀" and len(seen) == 2
    with pytest.raises(ConfigError, match="out of order"):
        list(_code_point_order(ObjectInfo(key=k, size=0) for k in ["b", "a"]))


# -- metadata ------------------------------------------------------------------------------


def test_metadata_name_and_value_encoding() -> None:
    for name in ["plain", "with_underscore", "x-origin", "a.b", "1st", "nöm", "csx_trap", "",
                 "_", "csx_782d6f726967696e", "csx_61"]:
        enc = encode_meta_name(name)
        assert enc.isascii() and (enc[:1].isalpha() or enc[:1] == "_")
        assert all(ch.isalnum() or ch == "_" for ch in enc)
        assert decode_meta_name(enc) == name
        assert decode_meta_name(enc.upper()) == name  # Azure names are case-insensitive
    assert encode_meta_name("plain") == "plain"
    assert encode_meta_name("x-origin") == "csx_782d6f726967696e"
    assert decode_meta_name("csx_61") == "csx_61"  # another tool's name, not ours: kept
    for value in ["plain", "café ☕", "  padded  ", "", "tab\there", "=?UTF-8?B?Zm9v?=", "a b"]:
        enc = encode_meta_value(value)
        assert enc.isascii() and enc == enc.strip()
        assert decode_meta_value(enc) == value
    assert encode_meta_value("plain value") == "plain value"


def test_metadata_round_trip(azure_server: AzureServer, azure_container: str) -> None:
    st = store(azure_container)
    mtime = datetime(2021, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)
    user = {"x-origin": "s3://bucket/key", "plain_name": "café ☕", "note": "  padded  ",
            "empty": "", "csx_trick": "=?UTF-8?B?Zm9v?=", "ascii": "just text"}
    meta = ObjectMeta(content_type="text/plain; charset=utf-8", content_encoding="identity",
                      content_disposition='attachment; filename="résumé.txt"',
                      cache_control="max-age=60", content_language="fr", user=user, mtime=mtime)
    data = b"some bytes"
    put(st, "m", data, meta)
    put(st, "mb", data * 40_000, meta, part_size=128 * KIB)  # the block-upload path
    for key in ("m", "mb"):
        props = container(azure_server, azure_container).get_blob_client(key) \
            .get_blob_properties()
        md = {k.lower(): v for k, v in props.metadata.items()}
        assert md["csx_782d6f726967696e"] == "s3://bucket/key"
        assert md["ascii"] == "just text"
        assert md["plain_name"].startswith("=?UTF-8?B?")
        assert md["mtime"] == "1620284889.5"
        assert all(k.isascii() and "-" not in k for k in md)
        cs = props.content_settings
        assert cs.content_type == "text/plain; charset=utf-8"
        assert cs.cache_control == "max-age=60" and cs.content_language == "fr"
        assert cs.content_encoding == "identity"
        assert cs.content_disposition.startswith("=?UTF-8?B?")
        got = st.stat(key)
        assert got is not None and got.meta == meta
    listed = {o.key: o.meta for o in st.list()}
    assert listed == {"m": meta, "mb": meta}


# -- failed writes leave nothing -----------------------------------------------------------


# -- stat / read / delete ------------------------------------------------------------------


def test_missing_container_on_data_calls(azure_server: AzureServer) -> None:
    st = store("no-such-container-here")
    with pytest.raises(ConfigError, match="does not exist"):
        list(st.list())
    with pytest.raises(ConfigError, match="does not exist"):
        st.stat("k")
    with pytest.raises(ConfigError, match="does not exist"):
        put(st, "k", b"x")


def _sums(data: bytes) -> dict[str, str]:
    s = stream(data)
    s.read()
    return s.checksums()


class CountingObserver:
    def __init__(self) -> None:
        self.before = 0
        self.statuses: list[int] = []

    def before_request(self) -> None:
        self.before += 1

    def after_response(self, status: int) -> None:
        self.statuses.append(status)


def test_small_write_is_one_observed_put(azure_server: AzureServer,
                                         azure_container: str) -> None:
    seen = CountingObserver()
    st = AzureStore(parse(f"az://{azure_container}/p"), observer=seen)  # type: ignore[arg-type]
    data = random.Random(3).randbytes(64 * KIB)
    meta = ObjectMeta(content_type="application/x-thing", cache_control="no-cache",
                      user={"k": "v"}, mtime=datetime(2022, 1, 2, tzinfo=UTC))
    info = st.write("x y/ü+z", stream(data), size=len(data), meta=meta, checksums=_sums(data))
    assert (seen.before, seen.statuses) == (1, [201])  # one Put Blob, no stage + commit
    assert info.checksums == {"md5": md5(data)} and info.size == len(data)
    got = st.stat("x y/ü+z")
    assert got is not None and got.meta == meta and got.etag == info.etag
    assert b"".join(st.read("x y/ü+z")) == data


def test_put_with_wrong_md5_is_rejected(azure_server: AzureServer, azure_container: str) -> None:
    # The transactional Content-MD5 travels with the body: a body that differs from it is
    # refused by the service and nothing is stored. (Azure says Md5Mismatch, which becomes an
    # IntegrityError; Azurite says InvalidOperation.)
    st = store(azure_container)
    with pytest.raises(HttpResponseError) as e:
        st._put_blob("k", b"the bytes", ObjectMeta(), {}, md5(b"other bytes"))
    assert e.value.status_code == 400
    assert e.value.error_code in ("Md5Mismatch", "InvalidOperation")  # type: ignore[attr-defined]
    no_trace_of(azure_server, azure_container, "k")
    e.value.error_code = "Md5Mismatch"  # type: ignore[attr-defined]
    assert isinstance(st._error(e.value, "writing", "k"), IntegrityError)


def test_put_pipeline_keeps_retries_and_auth(azure_server: AzureServer) -> None:
    st = store("some-container")
    kept = [type(getattr(p, "_policy", p)).__name__ for p in st._pipeline._impl_policies]
    assert "ExponentialRetry" in kept and "SharedKeyCredentialPolicy" in kept
    assert "StorageHeadersPolicy" in kept and "StorageResponseHook" in kept
    assert "DistributedTracingPolicy" not in kept and "HttpLoggingPolicy" not in kept


class RecordingAdapter(requests.adapters.BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[requests.PreparedRequest, dict[str, object]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        self.calls.append((request, kwargs))
        response = requests.Response()
        response.status_code = 201
        response._content = b""
        response.request = request
        return response

    def close(self) -> None:
        pass


def test_lean_session_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/corp/ca.pem")
    session = _LeanSession("https://acct.blob.core.windows.net")
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    monkeypatch.delenv("HTTPS_PROXY")  # read once, at start-up
    session.request("PUT", "https://acct.blob.core.windows.net/c/k?x=1", data=b"body",
                    headers={"x-ms-version": "v", "User-Agent": "azsdk"}, timeout=(1, 2),
                    allow_redirects=False)
    request, kwargs = adapter.calls[-1]
    assert request.method == "PUT" and request.body == b"body"
    assert request.url == "https://acct.blob.core.windows.net/c/k?x=1"
    assert request.headers["x-ms-version"] == "v" and request.headers["User-Agent"] == "azsdk"
    assert request.headers["Content-Length"] == "4" and "Accept-Encoding" in request.headers
    assert kwargs["proxies"]["https"] == "http://proxy.example:3128"  # type: ignore[index]
    assert kwargs["verify"] == "/corp/ca.pem" and kwargs["timeout"] == (1, 2)
    # NO_PROXY applies to the endpoint's host as requests would apply it.
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    bypassed = _LeanSession("https://internal.example/acct")
    bypassed.mount("https://", adapter)
    bypassed.request("GET", "https://internal.example/acct/c", allow_redirects=False,
                     verify=False)
    _, kwargs = adapter.calls[-1]
    assert kwargs["proxies"] == {} and kwargs["verify"] is False


def test_store_honours_proxy_from_environment(azure_server: AzureServer, azure_container: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ConfigError, match="cannot reach"):
        store(azure_container).check()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    store(azure_container).check()


# -- check() and credentials ---------------------------------------------------------------


def assert_no_secret(err: BaseException, *secrets: str) -> None:
    text = f"{err}\n{err!r}\n{err.__cause__!r}\n{err.__context__!r}"
    for secret in (KEY, SECRET_KEY, *secrets):
        assert secret not in text
    assert "AccountKey" not in text and "sig=" not in text
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def test_check_ok(azure_server: AzureServer, azure_container: str) -> None:
    store(azure_container, "some/prefix").check()


def test_check_missing_container(azure_server: AzureServer) -> None:
    with pytest.raises(ConfigError, match="container 'missing-container' does not exist") as e:
        store("missing-container").check()
    assert_no_secret(e.value)


def test_check_bad_key(azure_server: AzureServer, azure_container: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONNECTION_STRING, azure_server.connection_string.replace(
        KEY, SECRET_KEY))
    with pytest.raises(ConfigError, match=r"(?i)credentials|refused access") as e:
        store(azure_container).check()
    assert_no_secret(e.value)


def test_check_unreachable_endpoint_fails_fast(azure_server: AzureServer,
                                               azure_container: str) -> None:
    start = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach") as e:
        store(azure_container, endpoint="http://127.0.0.1:1/devstoreaccount1").check()
    assert time.monotonic() - start < 5
    assert "http://127.0.0.1:1/devstoreaccount1" in str(e.value)
    assert_no_secret(e.value)


def test_endpoint_argument_overrides_connection_string(
        azure_server: AzureServer, azure_container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = azure_server.connection_string.replace(azure_server.endpoint,
                                                    "http://127.0.0.1:1/devstoreaccount1")
    monkeypatch.setenv(ENV_CONNECTION_STRING, broken)
    with pytest.raises(ConfigError, match="cannot reach"):
        store(azure_container).check()
    st = store(azure_container, endpoint=azure_server.endpoint)
    st.check()
    put(st, "via-override", b"ok")
    assert b"".join(st.read("via-override")) == b"ok"


def _sas(container_name: str) -> str:
    return generate_container_sas(
        ACCOUNT, container_name, account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1))


def test_account_with_key_or_sas(azure_server: AzureServer, azure_container: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CONNECTION_STRING)
    monkeypatch.setenv(ENV_ACCOUNT, ACCOUNT)
    monkeypatch.setenv(ENV_KEY, KEY)
    st = store(azure_container, endpoint=azure_server.endpoint)
    st.check()
    put(st, "by-key", b"k")
    monkeypatch.delenv(ENV_KEY)
    sas = _sas(azure_container)
    monkeypatch.setenv(ENV_SAS, "?" + sas)
    st = store(azure_container, endpoint=azure_server.endpoint)
    st.check()  # a container SAS may not read container properties: check falls back
    put(st, "by-sas", b"s")
    assert [o.key for o in st.list()] == ["by-key", "by-sas"]
    # A tampered signature is refused, and neither the SAS nor its signature is shown.
    bad = sas.replace("sig=", "sig=AAAA")
    monkeypatch.setenv(ENV_SAS, bad)
    with pytest.raises(ConfigError) as e:
        store(azure_container, endpoint=azure_server.endpoint).check()
    assert_no_secret(e.value, bad, sas.split("sig=")[1])
    with pytest.raises(ConfigError) as e:
        put(store(azure_container, endpoint=azure_server.endpoint), "x", b"x")
    assert_no_secret(e.value, bad, sas.split("sig=")[1])


def test_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (ENV_CONNECTION_STRING, ENV_ACCOUNT, ENV_KEY, ENV_SAS):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as e:
        store("some-container")
    msg = str(e.value)
    assert "\n" not in msg
    for var in (ENV_CONNECTION_STRING, ENV_ACCOUNT, ENV_KEY, ENV_SAS):
        assert var in msg
    monkeypatch.setenv(ENV_ACCOUNT, "acct")
    with pytest.raises(ConfigError, match=ENV_KEY):
        store("some-container")


def test_malformed_connection_string_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONNECTION_STRING, f"AccountName=x;{SECRET_KEY.rstrip('=')}")
    with pytest.raises(ConfigError, match="malformed") as e:
        store("some-container")
    assert_no_secret(e.value)


def test_sdk_metadata_written_by_others_is_read(azure_server: AzureServer,
                                                azure_container: str) -> None:
    c = container(azure_server, azure_container)
    c.upload_blob("foreign", b"f", metadata={"Origin": "elsewhere", "csx_61": "raw",
                                             "mtime": "2020-01-02T03:04:05Z"},
                  content_settings=ContentSettings(content_type="image/png"))
    info = store(azure_container).stat("foreign")
    assert info is not None and info.meta is not None
    assert info.meta.user == {"origin": "elsewhere", "csx_61": "raw"}
    assert info.meta.mtime == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert info.meta.content_type == "image/png"

