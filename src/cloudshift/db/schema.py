"""Schema: ``pg_dump``'s pre-data (applied before the rows) and post-data (indexes,
constraints, triggers, materialized view refreshes: run after the rows, in parallel where
they are independent).

pg_dump knows every object kind and every version's quirks, so we do not re-implement DDL
generation from the catalogs. Both sections are dumped once, with the copy's snapshot, into
the job folder (a few kilobytes of DDL, never data), so a resumed run rebuilds exactly the
schema of the first run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cloudshift.core.errors import ConfigError
from cloudshift.db.dsn import Dsn

_HEADER = re.compile(r"^--\n-- Name: (?P<name>.*?); Type: (?P<type>.*?); Schema: (?P<schema>.*?);"
                     r" Owner: (?P<owner>.*?)\n--\n", re.M)
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s(.;"]+)'
_QUALIFIED = rf"({_IDENT}(?:\.{_IDENT})?)"
# The table each kind of statement is on, anchored at the statement's start so that a quoted
# name containing " ON x" cannot point elsewhere. pg_dump writes these shapes; for
# statistics, the table is the last FROM before the end of the statement.
_ALTER_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?:ONLY\s+)?{_QUALIFIED}", re.M | re.I)
_TABLE_OF = {
    "INDEX": re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+{_IDENT}\s+ON\s+(?:ONLY\s+)?"
                        rf"{_QUALIFIED}", re.M | re.I),
    "CONSTRAINT": _ALTER_TABLE,
    "FK CONSTRAINT": _ALTER_TABLE,
    "STATISTICS": re.compile(rf"^CREATE\s+STATISTICS\b[^;]*\bFROM\s+{_QUALIFIED}\s*;",
                             re.M | re.I),
}

# The order post-data must follow; entries within one phase are independent of each other.
PHASE_OF = {"INDEX": 1, "CONSTRAINT": 1, "INDEX ATTACH": 2, "FK CONSTRAINT": 3}
LAST_PHASE = 4
# A ``REFRESH MATERIALIZED VIEW``: pg_dump writes it last, a matview after those it reads.
MATVIEW_DATA = "MATERIALIZED VIEW DATA"


@dataclass(frozen=True)
class Entry:
    """One post-data statement group, as pg_dump's table of contents names it."""

    seq: int
    kind: str
    name: str
    schema: str
    sql: str

    @property
    def key(self) -> str:
        return f"{self.seq}:{self.kind}:{self.schema}.{self.name}"

    @property
    def phase(self) -> int:
        return PHASE_OF.get(self.kind, LAST_PHASE)

    @property
    def table(self) -> str | None:
        """``schema.name`` of the table the statement is on, unquoted as the catalog spells
        it (the key :attr:`cloudshift.db.catalog.Table.qualified` uses); None for kinds
        whose table we do not need."""
        pattern = _TABLE_OF.get(self.kind)
        m = pattern.search(self.sql) if pattern else None
        if m is None:
            return None
        parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p
                 for p in re.findall(_IDENT, m.group(1))]
        return ".".join(parts)

    @property
    def alters_table(self) -> bool:
        """Whether a line of it is ALTER TABLE (pg_dump puts REPLICA IDENTITY USING INDEX and
        CLUSTER ON into the index's own entry): it then locks the whole table."""
        return _ALTER_TABLE.search(self.sql) is not None


def tool(name: str) -> str:
    """The newest pg_dump/psql on this machine (a newer pg_dump reads older servers)."""
    import glob

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed",
                          hint="install the PostgreSQL client tools, e.g. apt-get install -y "
                               "postgresql-client")
    return found


def dump(src: Dsn, section: str, out: Path, *, snapshot: str | None,
         no_owner: bool, no_acl: bool) -> None:
    conninfo, env = src.child_env()
    args = [tool("pg_dump"), f"--section={section}", "--no-publications",
            "--no-subscriptions", "-f", str(out), "-d", conninfo]
    if section == "post-data":
        # pg_dump counts a materialized view's REFRESH ("MATERIALIZED VIEW DATA", written
        # only for those populated on the source, after what they read) as data, so
        # --schema-only would drop it and leave every matview unpopulated. The section holds
        # no rows without it; -B keeps large objects out, as --schema-only did.
        args.append("-B")
    else:
        args.append("--schema-only")
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    if no_owner:
        args.append("--no-owner")
    if no_acl:
        args.append("--no-privileges")
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConfigError(f"pg_dump --section={section} failed on the source: "
                          f"{_last_error(src, proc.stderr)}")


def apply_file(dst: Dsn, path: Path) -> None:
    """Run a pg_dump script on the target in one transaction (all of it, or none)."""
    conninfo, env = dst.child_env()
    proc = subprocess.run([tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                           "--single-transaction", "-f", str(path), "-d", conninfo],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConfigError(f"creating the schema on the target failed: "
                          f"{_last_error(dst, proc.stderr)}",
                          hint="a role the dump names may be missing on the target: create "
                               "it, or rerun with --no-owner --no-acl")


def _last_error(dsn: Dsn, stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "error" in ln or "FATAL" in ln]
    text = (errors or lines or ["(no message)"])[0]
    return dsn.scrub(text.strip())[:300]


def parse(text: str) -> tuple[str, list[Entry]]:
    """(preamble SET statements, entries in dump order) of a plain pg_dump script."""
    # psql meta-commands (\restrict and the like) are for psql; we run SQL directly.
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("\\")) + "\n"
    matches = list(_HEADER.finditer(text))
    preamble = _strip_comments(text[:matches[0].start()] if matches else text)
    entries = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = _strip_comments(text[m.end():end])
        if not body.strip():
            continue
        entries.append(Entry(seq=i, kind=m.group("type"), name=m.group("name"),
                             schema=m.group("schema"), sql=body.strip()))
    return preamble, entries


def _strip_comments(sql: str) -> str:
    return "\n".join(ln for ln in sql.splitlines() if not ln.startswith("--")).strip()
