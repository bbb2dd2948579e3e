"""Scrub secrets from any text that may reach a log, journal, report or error message.

SDK exception strings can carry signed URLs, SAS tokens or connection strings; everything we
print or store about a failure passes through :func:`redact` first.
"""

from __future__ import annotations

import os
import re

_PATTERNS = [
    # Azure connection strings and shared keys
    (re.compile(r"(AccountKey=)[^;\s'\"]+", re.I), r"\1***"),
    (re.compile(r"(SharedAccessSignature=)[^;\s'\"]+", re.I), r"\1***"),
    # SAS tokens and pre-signed URL query parameters
    (re.compile(r"([?&](?:sig|se|sp|sv|st|spr|srt|ss|skoid|sktid|skt|ske|sks|skv|sr|"
                r"X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
                r"AWSAccessKeyId|X-Goog-Signature|X-Goog-Credential|GoogleAccessId|"
                r"access_token|key|api_key|apikey)=)[^&\s'\"]+", re.I), r"\1***"),
    # HTTP authorization headers
    (re.compile(r"((?:Authorization|x-ms-copy-source-authorization)['\"]?\s*[:=]\s*['\"]?)"
                r"[^'\"\n]+", re.I), r"\1***"),
    # AWS access key ids
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), r"\1****************"),
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)[^@\s/]+@", re.I), r"\1***@"),
]

_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
               "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
               "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN")


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    # Whatever secrets this process was given, wherever they turn up verbatim.
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 8:
            text = text.replace(value, "***")
            if name == "AZURE_STORAGE_CONNECTION_STRING":
                for part in value.split(";"):
                    k, _, v = part.partition("=")
                    if k.strip().lower() in ("accountkey", "sharedaccesssignature") and v:
                        text = text.replace(v, "***")
    return text


def describe(exc: BaseException) -> str:
    """One line for an exception: its message, without secrets, without a traceback."""
    text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:400] + "..."
    return redact(text)
