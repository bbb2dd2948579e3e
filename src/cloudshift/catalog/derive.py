"""Rebuild the shipped throughput, egress and VM tables from the Skyplane and SkyPilot data.

Run once by a maintainer (``python -m cloudshift.catalog.derive ../shared/data``); the result
is committed under ``catalog/data/`` with its provenance (``PROVENANCE.md``). Kept in the
package so the derivation is reproducible and reviewable rather than a one-off.
"""

from __future__ import annotations

import csv
import re
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).parent / "data"
_ZONE = re.compile(r"^(gcp:[a-z]+-[a-z]+\d+)-[a-z]$")


def region_of(name: str) -> str:
    """Skyplane names GCP zones (``gcp:us-central1-a``); prices and users speak regions."""
    m = _ZONE.match(name)
    return m.group(1) if m else name


def derive_throughput(src: Path, out: Path) -> int:
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    with src.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if (row["src_tier"], row["dst_tier"]) != ("PREMIUM", "PREMIUM"):
                continue
            if row["success"] != "True" or not row["throughput_received"]:
                continue
            pair = (region_of(row["src_region"]), region_of(row["dst_region"]))
            samples[pair].append(float(row["throughput_received"]))
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["src", "dst", "gbps", "n"])
        for (s, d), vals in sorted(samples.items()):
            w.writerow([s, d, f"{statistics.median(vals) / 1e9:.3f}", len(vals)])
    return len(samples)


def derive_egress(src: Path, out: Path) -> int:
    rows: dict[tuple[str, str], str] = {}
    with src.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if (row["src_tier"], row["dest_tier"]) != ("PREMIUM", "PREMIUM"):
                continue
            rows[(region_of(row["src"]), region_of(row["dest"]))] = row["cost"]
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["src", "dst", "usd_per_gb"])
        for (s, d), cost in sorted(rows.items()):
            w.writerow([s, d, cost])
    return len(rows)


def copy_vms(prices: Path, out: Path) -> int:
    """The SkyPilot snapshot's two tables, unchanged: the planner takes the CPU-only rows as
    worker VMs, the assessment every row."""
    rows = 0
    for name in ("vms.csv", "gcp_accelerators.csv"):
        shutil.copyfile(prices / name, out / name)
        with (out / name).open(newline="") as fh:
            rows += sum(1 for _ in csv.DictReader(fh))
    return rows


def main(argv: list[str]) -> int:
    shared = Path(argv[1]) if len(argv) > 1 else Path("../shared/data")
    print("throughput pairs", derive_throughput(shared / "skyplane" / "throughput.csv",
                                                DATA / "throughput.csv"))
    print("egress pairs", derive_egress(shared / "skyplane" / "cost.csv", DATA / "egress.csv"))
    print("vm and gpu rows", copy_vms(shared / "prices", DATA))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
