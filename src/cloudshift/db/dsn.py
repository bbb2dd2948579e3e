"""Connection strings: parse, show without the password, connect with one-line errors.

A DSN may be a URI (``postgresql://user:pw@host:5432/db?sslmode=require``) or key=value
conninfo. The password never leaves this module in text form except towards libpq: the
printable form drops it, and child processes (pg_dump, psql) get it through ``PGPASSWORD``
rather than on their command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.core.redact import redact

# Identical text rendering on both servers, so COPY round-trips and row hashes compare.
SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO,YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "application_name": "cloudshift",
}

CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Dsn:
    """One side of a migration: ``role`` is 'source' or 'target', used in messages."""

    text: str
    role: str

    def params(self) -> dict[str, Any]:
        try:
            return dict(conninfo_to_dict(self.text))
        except psycopg.ProgrammingError as exc:
            raise UsageError(f"the {self.role} DSN is not a valid connection string: "
                             f"{redact(str(exc)).splitlines()[0]}",
                             hint="write postgresql://user:password@host:5432/dbname") from None

    @property
    def password(self) -> str | None:
        value = self.params().get("password")
        return None if value is None else str(value)

    def safe(self) -> str:
        """The DSN as we may print it: host, port, user, database; never the password."""
        p = self.params()
        host = p.get("host") or p.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        user = p.get("user") or os.environ.get("PGUSER") or ""
        db = p.get("dbname") or os.environ.get("PGDATABASE") or user
        return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db}"

    @property
    def dbname(self) -> str:
        p = self.params()
        return str(p.get("dbname") or os.environ.get("PGDATABASE") or p.get("user") or "")

    def without_password(self) -> str:
        return self._without("password")

    def without_secrets(self) -> str:
        """The connection string to keep (the job journal): everything libpq was given
        (sslmode, certificates, options, several hosts, a socket folder...) but the password
        and the client key's passphrase (``sslpassword``). libpq finds the password again
        in PGPASSWORD or ~/.pgpass."""
        return self._without("password", "sslpassword")

    def _without(self, *keys: str) -> str:
        p = self.params()
        for key in keys:
            p.pop(key, None)
        return make_conninfo("", **p)

    def child_env(self) -> tuple[str, dict[str, str]]:
        """(conninfo without password, environment with PGPASSWORD) for pg_dump/psql."""
        env = dict(os.environ)
        pw = self.password
        if pw is not None:
            env["PGPASSWORD"] = pw
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))
        return self.without_password(), env

    def with_options(self, **extra: str) -> str:
        return make_conninfo(self.text, **extra)

    def scrub(self, text: str) -> str:
        """Remove this DSN's password (and any URI credentials) from text."""
        pw = self.password
        if pw:
            text = text.replace(pw, "***")
        return redact(text)


def connect(dsn: Dsn, *, autocommit: bool = True, replication: bool = False,
            settings: bool = True) -> psycopg.Connection[Any]:
    """Open a connection or raise a one-line :class:`ConfigError` saying what to fix."""
    extra: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if replication:
        extra["replication"] = "database"
    if settings and not replication:
        opts = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
        # Keep the user's own options (e.g. -c search_path=...); ours come last and win.
        own = dsn.params().get("options")
        extra["options"] = f"{own} {opts}" if own else opts
    try:
        conn = psycopg.connect(dsn.text, autocommit=autocommit, **extra)
    except psycopg.Error as exc:
        raise connect_error(dsn, exc) from None
    return conn


def connect_error(dsn: Dsn, exc: BaseException) -> ConfigError:
    raw = dsn.scrub(" ".join(str(exc).split()))
    low = raw.lower()
    where = dsn.safe()
    if "password authentication failed" in low or "no password supplied" in low \
            or "authentication failed" in low:
        return ConfigError(f"the {dsn.role} server rejected the login for {where}",
                           hint="check the user name and password in the DSN (or PGPASSWORD "
                                "/ ~/.pgpass)")
    if "does not exist" in low and "database" in low:
        return ConfigError(f"the {dsn.role} database does not exist: {where}",
                           hint="create it first (createdb) or fix the database name")
    if "connection refused" in low or "could not translate host name" in low \
            or "timeout expired" in low or "no route to host" in low \
            or "could not connect" in low or "network is unreachable" in low:
        return ConfigError(f"cannot reach the {dsn.role} server at {where}",
                           hint="check host and port, that the server is running and "
                                "accepts TCP connections (listen_addresses, firewall)")
    if "pg_hba.conf" in low:
        return ConfigError(f"the {dsn.role} server does not allow this connection: {where}",
                           hint="add a pg_hba.conf line for this client, user and database")
    tail = raw.split("failed: ", 1)[-1][:200]
    return ConfigError(f"cannot connect to the {dsn.role} server at {where}: {tail}")
