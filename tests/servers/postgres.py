"""Two real PostgreSQL servers (source with ``wal_level=logical``, target), one per session.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: the servers then run
as the ``postgres`` user on data folders that user owns. Host (TCP) logins need a password
(SCRAM), so the wrong-password path is real; each test gets fresh databases on both servers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers import free_port, unavailable, wait_for_port

PASSWORD = "s3cret-Pw-4-tests"
USER = "postgres"


@dataclass(frozen=True)
class PgServer:
    name: str
    port: int
    datadir: Path
    bindir: Path

    def dsn(self, dbname: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return (f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} "
                f"dbname={dbname}")


@dataclass(frozen=True)
class PgPair:
    source: PgServer
    target: PgServer


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        real = Path(os.path.realpath(found)).parent
        if (real / "pg_ctl").exists() and (real / "postgres").exists():
            return real
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(candidate).parent
    return None


def _as_server_user() -> list[str]:
    """``runuser -u postgres --`` when we are root (initdb refuses root), else nothing."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError as exc:
        raise RuntimeError("running as root and there is no 'postgres' user to run the "
                           "server as (useradd -r postgres)") from exc
    return ["runuser", "-u", USER, "--"]


def _start(name: str, bindir: Path, root: Path, extra: list[str]) -> PgServer:
    datadir = root / name
    datadir.mkdir()
    pwfile = root / f"{name}.pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        ent = pwd.getpwnam(USER)
        for p in (root, datadir, pwfile):
            os.chown(p, ent.pw_uid, ent.pw_gid)
    run = _as_server_user()
    subprocess.run([*run, str(bindir / "initdb"), "-D", str(datadir), "-U", USER,
                    "--auth-local=trust", "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    settings = ["-p", str(port), "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={root}", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=60", "-c", "shared_buffers=64MB",
                "-c", "max_wal_size=1GB", *extra]
    subprocess.run([*run, str(bindir / "pg_ctl"), "-D", str(datadir), "-l",
                    str(datadir / "server.log"), "-w", "-t", "60", "-o",
                    " ".join(settings), "start"], check=True, capture_output=True)
    wait_for_port(port)
    return PgServer(name, port, datadir, bindir)


def _stop(server: PgServer) -> None:
    subprocess.run([*_as_server_user(), str(server.bindir / "pg_ctl"), "-D",
                    str(server.datadir), "-m", "immediate", "-w", "stop"],
                   capture_output=True, check=False)


@pytest.fixture(scope="session")
def pg_servers() -> Iterator[PgPair]:
    bindir = _bindir()
    if bindir is None:
        unavailable("PostgreSQL", "initdb not found (apt-get install -y postgresql)")
        raise AssertionError("unreachable")
    root = Path(tempfile.mkdtemp(prefix="cloudshift-pg-"))
    os.chmod(root, 0o755)
    started: list[PgServer] = []
    try:
        try:
            started.append(_start("source", bindir, root,
                                  ["-c", "wal_level=logical", "-c", "max_wal_senders=20",
                                   "-c", "max_replication_slots=20"]))
            started.append(_start("target", bindir, root,
                                  ["-c", "max_logical_replication_workers=12",
                                   "-c", "max_worker_processes=20"]))
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            unavailable("PostgreSQL", f"{exc} {detail.decode(errors='replace')[-300:]}")
        yield PgPair(started[0], started[1])
    finally:
        for server in started:
            _stop(server)
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class PgDbs:
    """A fresh, empty database on each server, and their DSNs (with the password)."""

    servers: PgPair
    name: str

    @property
    def src(self) -> str:
        return self.servers.source.dsn(self.name)

    @property
    def dst(self) -> str:
        return self.servers.target.dsn(self.name)


def _admin(server: PgServer, sql: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql)


def _drop_replication(pair: PgPair, name: str) -> None:
    import psycopg

    with contextlib.suppress(psycopg.Error), \
            psycopg.connect(pair.target.dsn(name), autocommit=True) as conn:
        subs = [r[0] for r in conn.execute(
            "SELECT subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
            "WHERE d.datname = current_database()")]
        for sub in subs:
            conn.execute(f'ALTER SUBSCRIPTION "{sub}" DISABLE')
            conn.execute(f'ALTER SUBSCRIPTION "{sub}" SET (slot_name = NONE)')
            conn.execute(f'DROP SUBSCRIPTION "{sub}"')
    with contextlib.suppress(psycopg.Error), \
            psycopg.connect(pair.source.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                     "WHERE database = %s AND active_pid IS NOT NULL", (name,))
        for _ in range(50):
            left = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE "
                                "database = %s AND active", (name,)).fetchone()
            if not left or not left[0]:
                break
            time.sleep(0.1)
        conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                     "WHERE database = %s", (name,))


@pytest.fixture
def pg_dbs(pg_servers: PgPair) -> Iterator[PgDbs]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    for server in (pg_servers.source, pg_servers.target):
        _admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield PgDbs(pg_servers, name)
    finally:
        _drop_replication(pg_servers, name)
        for server in (pg_servers.source, pg_servers.target):
            with contextlib.suppress(Exception):
                _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
