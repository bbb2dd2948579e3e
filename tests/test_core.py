"""The neutral core: pluggable checksums, and the units people type and read (sizes,
durations, money)."""

from __future__ import annotations

import hashlib

import pytest

from cloudshift.core.checksums import Hasher, common, hash_bytes, mismatch
from cloudshift.core.errors import UsageError
from cloudshift.core.units import (
    human_bytes,
    human_time,
    money,
    money_usd,
    parse_duration,
    parse_size,
)

SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"
CRC32C_CHECK = "e3069283"           # CRC-32C of b"123456789", the catalogue's check value


# --- checksums -------------------------------------------------------------------------


def test_default_is_md5_and_crc32c_in_that_order() -> None:
    sums = hash_bytes(b"")
    assert list(sums) == ["md5", "crc32c"]
    assert sums["md5"] == MD5_EMPTY
    assert hash_bytes(b"123456789")["crc32c"] == CRC32C_CHECK


def test_sha256_on_request() -> None:
    assert hash_bytes(b"abc", algorithms=("sha256",)) == {"sha256": SHA256_ABC}
    sums = hash_bytes(b"abc", algorithms=["sha256", "md5", "crc32c"])
    assert list(sums) == ["sha256", "md5", "crc32c"]
    assert sums["md5"] == hashlib.md5(b"abc").hexdigest()


def test_hasher_streams_chunks_of_any_size() -> None:
    data = bytes(range(256)) * 1000
    h = Hasher(("md5", "crc32c", "sha256"))
    for i in range(0, len(data), 777):
        h.update(data[i:i + 777])
    assert h.size == len(data)
    assert h.hexdigests() == hash_bytes(data, algorithms=("md5", "crc32c", "sha256"))
    assert h.hexdigests()["sha256"] == hashlib.sha256(data).hexdigest()


def test_one_algorithm_by_its_name() -> None:
    # A str is one name, not the letters of one ("unknown checksum algorithm 's'").
    assert hash_bytes(b"abc", algorithms="sha256") == {"sha256": SHA256_ABC}
    h = Hasher("md5")
    h.update(b"abc")
    assert h.hexdigests() == {"md5": hashlib.md5(b"abc").hexdigest()} and h.size == 3
    with pytest.raises(ValueError, match="unknown checksum algorithm 'sha1'"):
        Hasher("sha1")


def test_the_default_fast_path_gives_what_the_general_one_gives() -> None:
    data = bytes(range(256)) * 40
    fast, general, swapped = Hasher(), Hasher(["md5", "crc32c"]), Hasher(("crc32c", "md5"))
    for h in (fast, general, swapped):
        for i in range(0, len(data), 1000):
            h.update(data[i:i + 1000])
    assert fast.size == general.size == swapped.size == len(data)
    assert fast.hexdigests() == general.hexdigests() == swapped.hexdigests()
    assert list(fast.hexdigests()) == ["md5", "crc32c"]
    assert list(swapped.hexdigests()) == ["crc32c", "md5"]   # the order asked for
    assert Hasher(()).hexdigests() == {}


def test_unknown_algorithm_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="sha1") as err:
        Hasher(("md5", "sha1"))
    for known in ("md5", "crc32c", "sha256"):
        assert known in str(err.value)
    with pytest.raises(ValueError, match="known"):
        hash_bytes(b"x", algorithms=("MD5",))


def test_sha256_is_compared_first_when_both_sides_have_it() -> None:
    a = {"md5": "aa", "sha256": "11"}
    b = {"md5": "aa", "sha256": "22", "crc32c": "cc"}
    assert common(a, b) == ["sha256", "md5"]
    assert mismatch(a, b) == "sha256"
    assert mismatch({"md5": "AA"}, {"md5": "aa", "crc32c": "cc"}) is None


# --- sizes and times -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    ("1048576", 1048576), ("16MiB", 16 * 2**20), ("16M", 16 * 2**20), ("8MB", 8 * 2**20),
    ("1.5K", 1536), (" 2 g ", 2 * 2**30), ("1TiB", 2**40), ("64MiB/s", 64 * 2**20),
    ("0", 0), ("16mib", 16 * 2**20),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "-1M", "16 PiB", "1e6", "M"])
def test_bad_size_is_one_line(text: str) -> None:
    with pytest.raises(UsageError, match="is not a size") as err:
        parse_size(text)
    assert "\n" not in str(err.value) and "16MiB" in str(err.value)


@pytest.mark.parametrize(("text", "seconds"), [
    ("12h", 43200), ("90m", 5400), ("90 min", 5400), ("2d", 172800), ("3600s", 3600),
    ("1w", 604800), ("45", 45 * 3600), ("1.5h", 5400), (2, 7200), (0.5, 1800),
    ("3 days", 3 * 86400), ("2 hours", 7200), ("1 hour", 3600), ("10 mins", 600),
    ("90 minutes", 5400), ("30 secs", 30), ("2 weeks", 1209600), ("2 HR", 7200),
])
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "h", "1h30m",
                                  # a word that is no unit was read as hours, "months" as m:
                                  "12x", "5 years", "2 months", "3 hx"])
def test_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration") as err:
        parse_duration(text)
    assert "\n" not in str(err.value) and "12h" in str(err.value)


@pytest.mark.parametrize("text", ["0h", "-2h", 0, -1.0, "0"])
def test_a_duration_must_be_positive(text: str | float) -> None:
    with pytest.raises(UsageError, match=r"a duration must be positive \(got ") as err:
        parse_duration(text)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match=r"^--deadline must be positive .*e\.g\. --deadline 12h"):
        parse_duration(text, name="--deadline", hint="e.g. --deadline 12h")


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (16 * 2**20, "16.0 MiB"), (2**40, "1.0 TiB"), (2**50, "1024.0 TiB"), (-2048, "-2.0 KiB"),
    (0.4, "0 B"),
])
def test_human_bytes(n: float, text: str) -> None:
    assert human_bytes(n) == text


@pytest.mark.parametrize(("s", "text"), [
    (0, "0.0 s"), (59.94, "59.9 s"), (60, "1.0 min"), (3599, "60.0 min"), (3600, "1.00 h"),
    (3 * 86400 - 1, "72.00 h"), (3 * 86400, "3.0 days"),
])
def test_human_time(s: float, text: str) -> None:
    assert human_time(s) == text


# --- money: two precisions, one place --------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (None, "unknown"), (0, "$0"), (0.4, "$0"), (1234.5, "$1,234"), (1235.5, "$1,236"),
    (1_234_567.89, "$1,234,568"), (-3.7, "$-4"),
])
def test_money_whole_dollars(value: float | None, text: str) -> None:
    """``assess``' figures: whole dollars (what render/assess.py printed)."""
    assert money(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0, "0.00 USD"), (0.0, "0.00 USD"), (0.01, "0.01 USD"), (0.004, "0.004000 USD"),
    (0.0000004, "0.000000 USD"), (1234.567, "1,234.57 USD"), (12.345, "12.35 USD"),
    (-5, "-5.000000 USD"),
])
def test_money_usd_keeps_fractions_of_a_cent(value: float, text: str) -> None:
    """``plan``'s figures: cents, six decimals below a cent (what render/plan.py printed)."""
    assert money_usd(value) == text
