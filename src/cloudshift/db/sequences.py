"""The sequences step: every target sequence set to the source's value.

Logical replication carries rows, not sequence values, so ``db copy`` runs this after the
data and ``db cutover`` runs it again inside the write freeze.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from cloudshift.db import catalog


def copy_sequences(sconn: psycopg.Connection[Any], dconn: psycopg.Connection[Any]) -> int:
    """Set every sequence the target has to the source's value; returns how many."""
    have = {s.qualified for s in catalog.sequences(dconn)}
    n = 0
    for s in catalog.sequences(sconn):
        if s.qualified not in have or s.last_value is None:
            continue
        dconn.execute(sql.SQL("SELECT setval({}, {}, {})").format(
            sql.Literal(s.ident().as_string(dconn)), sql.Literal(s.last_value),
            sql.Literal(s.is_called)))
        n += 1
    return n
