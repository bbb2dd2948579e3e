"""The README's first command: the demo runs end to end on its embedded servers."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_moves_and_verifies_everything(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "STORAGE_EMULATOR", "AZURE_"))}
    proc = subprocess.run([sys.executable, "-m", "cloudshift.cli", "demo", "--objects", "40",
                           "--large-mib", "6", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    assert "copied 40 objects" in out and "0 failed" in out
    assert "OK: 40 match, 0 missing, 0 extra, 0 mismatched" in out
    assert "verified by checksum: 40" in out
    assert "USD" in out  # the cost estimate
