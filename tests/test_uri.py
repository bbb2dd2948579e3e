from __future__ import annotations

import os

import pytest

from cloudshift.core.errors import UsageError
from cloudshift.core.uri import Location, parse


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://bucket", Location("s3", "bucket", "")),
    ("s3://bucket/", Location("s3", "bucket", "")),
    ("s3://bucket/photos", Location("s3", "bucket", "photos/")),
    ("gs://my_bucket/a/b/", Location("gs", "my_bucket", "a/b/")),
    ("az://container/x", Location("az", "container", "x/")),
    ("mem://demo/p", Location("mem", "demo", "p/")),
    ("file:///tmp/x", Location("file", "", "/tmp/x")),
    ("gcs://bucket/x", Location("gs", "bucket", "x/")),
])
def test_parse(uri: str, expected: Location) -> None:
    assert parse(uri) == expected


def test_plain_path_is_absolute() -> None:
    assert parse("some/dir") == Location("file", "", os.path.abspath("some/dir"))


@pytest.mark.parametrize(("uri", "words"), [
    ("ftp://host/x", "unsupported URI scheme"),
    ("s3://", "names no bucket"),
    ("s3://Bad_Bucket/x", "not a valid bucket name"),
    ("az://a--b/x", "not a valid container name"),
    ("s3://bucket/a//b", "empty path segment"),
    ("file://relative/path", "absolute path"),
    ("", "empty location"),
])
def test_bad_uris_explain_themselves(uri: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(uri)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_contains() -> None:
    assert parse("s3://bkt/a").contains(parse("s3://bkt/a/b"))
    assert not parse("s3://bkt/a").contains(parse("s3://bkt/ab"))
    assert not parse("s3://bkt/a").contains(parse("gs://bkt/a/b"))
    assert parse("/tmp/x").contains(parse("/tmp/x/y"))
    assert not parse("/tmp/x").contains(parse("/tmp/xy"))
