"""PostgreSQL migration: pre-flight check, parallel consistent copy, change capture, cutover,
and row-range verification between two PostgreSQL servers.

The hot path lives in :mod:`copy` (data), :mod:`schema` (DDL via pg_dump), :mod:`follow`
(logical replication and cutover) and :mod:`verify` (schema and data diff); :mod:`cli` only
parses and prints.
"""

from __future__ import annotations
