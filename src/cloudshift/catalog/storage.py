"""The storage table: one row per (region, storage class), each rate with its own source.

Shipped rows of the reference regions (us-east-1, us-central1, eastus) give every rate of
every class. Rows of other regions may leave a rate blank: it is then the reference region's,
cited as such. Rows that ``cloudshift prices update`` wrote under the user's folder replace
the rates they give, field by field, and keep the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cloudshift.catalog.records import STORAGE_FIELDS, Figure, StorageRates
from cloudshift.catalog.regions import REFERENCE_REGION
from cloudshift.catalog.sources import Source
from cloudshift.core.errors import ConfigError

UPDATED_FILE = "storage.csv"  # what `prices update` writes in the user's prices folder

Key = tuple[str, str]  # (provider:code, storage class)


def _figure(row: Mapping[str, str], name: str, source: Source, where: str,
            hint: str = "fix the data file or drop the override") -> Figure | None:
    text = (row.get(name) or "").strip()
    if not text:
        return None
    try:
        return Figure(float(text), source)
    except ValueError:
        raise ConfigError(f"{where}: column '{name}' holds '{text}', not a number",
                          hint=hint) from None


def _inherited(figure: Figure, ref: str) -> Figure:
    return Figure(figure.value, figure.source, f"{ref} list price")


def _rates(key: Key, product: str, figures: Mapping[str, Figure], min_days: int
           ) -> StorageRates:
    return StorageRates(key[0], key[1], product, min_days=min_days,
                        **{f: figures[f] for f in STORAGE_FIELDS})


def shipped_storage(rows: Iterable[dict[str, str]], source_of: Callable[[dict[str, str]], Source],
                    origin: str) -> dict[Key, StorageRates]:
    """Rows of ``storage.csv`` -> rates; blanks are filled from the reference region."""
    table = "packaged storage.csv" if origin == "packaged" else origin
    parsed: list[tuple[Key, str, dict[str, str], dict[str, Figure]]] = []
    for row in rows:
        key = (f"{row['provider']}:{row['region']}", row["storage_class"])
        where = f"{table} {key[0]} {key[1]}"
        source = source_of(row)
        figures = {f: fig for f in (*STORAGE_FIELDS, "min_days")
                   if (fig := _figure(row, f, source, where)) is not None}
        parsed.append((key, where, row, figures))
    out: dict[Key, StorageRates] = {}
    # Reference rows first: the others take their blanks from them.
    parsed.sort(key=lambda item: item[0][0] != REFERENCE_REGION.get(item[0][0].split(":")[0]))
    for key, where, row, figures in parsed:
        ref = REFERENCE_REGION.get(key[0].split(":", 1)[0], "")
        base = out.get((ref, key[1])) if key[0] != ref else None
        for f in STORAGE_FIELDS:
            if f in figures:
                continue
            if base is None:
                whence = ("it is a reference region's row" if key[0] == ref else
                          f"there is no {ref or key[0]} {key[1]} row to take it from")
                raise ConfigError(f"{where}: '{f}' is blank and {whence}",
                                  hint="give every rate of the reference regions' rows "
                                       "(us-east-1, us-central1, eastus)")
            figures[f] = _inherited(base.rate(f), ref)
        days = figures.pop("min_days", None)
        min_days = int(days.value) if days else (base.min_days if base else 0)
        product = (row.get("product") or "").strip() or (base.product if base else key[1])
        out[key] = _rates(key, product, figures, min_days)
    return out


def read_updated_rows(folder: Path) -> list[dict[str, str]]:
    """The rows ``prices update`` wrote, or none."""
    path = folder / UPDATED_FILE
    if not path.is_file():
        return []
    try:
        return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read updated prices '{path}': {exc}",
                          hint="delete it to fall back to the shipped prices") from exc


def updated_source(row: Mapping[str, str]) -> Source:
    src_id = row.get("source", "") or "prices-update"
    return Source(src_id, row.get("source_title") or src_id, row.get("url", ""),
                  row.get("as_of") or "?")


def merge_updates(storage: dict[Key, StorageRates], rows: Iterable[dict[str, str]],
                  where: Path) -> dict[Key, StorageRates]:
    """Rates refreshed by ``prices update`` replace the ones they cover, field by field."""
    out = dict(storage)
    for row in rows:
        key = (row.get("region", ""), row.get("storage_class", ""))
        provider = key[0].split(":", 1)[0]
        ref = REFERENCE_REGION.get(provider, "")
        source = updated_source(row)
        base = out.get(key)
        if base is not None:
            figures = {f: base.rate(f) for f in STORAGE_FIELDS}
        elif (ref_rates := out.get((ref, key[1]))) is not None:
            base = ref_rates
            figures = {f: _inherited(ref_rates.rate(f), ref) for f in STORAGE_FIELDS}
        else:
            figures = {f: Figure(0.0, source) for f in STORAGE_FIELDS}
        for f in STORAGE_FIELDS:
            fig = _figure(row, f, source, f"{where / UPDATED_FILE} {key[0]} {key[1]}",
                          hint="delete it to fall back to the shipped prices")
            if fig is not None:
                figures[f] = fig
        out[key] = _rates(key, base.product if base else key[1], figures,
                          base.min_days if base else 0)
    return out
