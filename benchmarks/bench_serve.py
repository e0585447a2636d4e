"""API benchmark: requests/s and p99 for one year of daily bars at 50 concurrent clients,
and the live feed's fan-out to 100 Server-Sent-Events clients.

Run by hand: ``python benchmarks/bench_serve.py [--clients 50 --requests 3000 --listeners 100]``.
Loads one year of simulated bars with ``marketlake run``, starts ``marketlake serve`` in its
own process on a loopback port, and drives it from this process with httpx (asyncio):

- ``GET /api/v1/bars/AAPL`` (252 bars as JSON) at ``--clients`` concurrent clients, beside
  ``GET /healthz`` (the server's own cost, no warehouse) and the same query straight on the
  DuckDB file in this process (the warehouse's cost);
- ``--listeners`` clients on ``/api/v1/live`` while this process writes a new 1-minute bar
  into the warehouse every second: how long each bar takes to reach every listener.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa

from marketlake.errors import TransientError
from marketlake.warehouse import open_warehouse

SYMBOL = "AAPL"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def marketlake(*args: str, env: dict[str, str]) -> None:
    """Run the real command and stop on failure."""
    subprocess.run([sys.executable, "-m", "marketlake", *args], check=True, env=env)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def load(base: str, path: str, clients: int, requests: int) -> tuple[float, float, float]:
    """``requests`` GETs of ``path`` over ``clients`` concurrent connections: requests/s,
    p50 and p99 latency in ms."""
    latencies: list[float] = []
    remaining = iter(range(requests))

    errors = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in remaining:
            started = time.perf_counter()
            try:
                response = await http.get(path)
            except httpx.TransportError:  # a kept-alive connection the server closed
                errors += 1
                continue
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        await http.get(path)  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    if errors:
        print(f"  ({errors} of {requests} requests to {path} lost their connection)")
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


def direct_queries(url: str, count: int) -> float:
    """Queries/s of the bars query on the warehouse in this process (one connection)."""
    with open_warehouse(url, read_only=True) as warehouse:
        started = time.perf_counter()
        for _ in range(count):
            warehouse.query(
                "SELECT * FROM bars_1d WHERE symbol = ? ORDER BY ts LIMIT 10001", [SYMBOL]
            )
        return count / (time.perf_counter() - started)


def write_bar(url: str, ts: datetime) -> None:
    """Upsert one 1-minute bar at ``ts``, retrying while the server holds the file."""
    row = {
        "symbol": [SYMBOL],
        "ts": [ts],
        "open": [100.0],
        "high": [101.0],
        "low": [99.0],
        "close": [100.5],
        "volume": [1000.0],
        "vwap": [100.2],
        "trades": [10],
    }
    for _ in range(200):
        try:
            with open_warehouse(url) as warehouse:
                warehouse.upsert("bars_1m", pa.table(row))
            return
        except TransientError:
            time.sleep(0.02)
    raise RuntimeError("the warehouse stayed busy")


async def fan_out(base: str, url: str, listeners: int, bars: int) -> tuple[float, float, int]:
    """Bars written one a second reach ``listeners`` SSE clients: p50 and p99 delay from the
    write to each arrival (ms), and the arrivals counted."""
    written: dict[str, float] = {}
    delays: list[float] = []
    connected = 0

    async def listen(http: httpx.AsyncClient) -> None:
        nonlocal connected
        async with http.stream("GET", "/api/v1/live") as response:
            connected += 1
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    ts = json.loads(line[6:]).get("ts")
                    if ts in written:
                        delays.append((time.perf_counter() - written[ts]) * 1000)

    limits = httpx.Limits(max_connections=listeners + 5)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=None) as http:
        tasks = [asyncio.create_task(listen(http)) for _ in range(listeners)]
        while connected < listeners:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.5)  # the feed notes where the tables end
        first = datetime(2030, 1, 2, 14, 30, tzinfo=UTC)
        for index in range(bars):
            ts = first + timedelta(minutes=index)
            key = ts.isoformat().replace("+00:00", "Z")
            written[key] = time.perf_counter()  # from the start of the write
            await asyncio.to_thread(write_bar, url, ts)
            await asyncio.sleep(1.0)
        await asyncio.sleep(3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if not delays:
        raise RuntimeError("no live bar reached a listener")
    return percentile(delays, 0.5), percentile(delays, 0.99), len(delays)


def main() -> None:
    """Run both measurements and print them beside their baselines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--bars", type=int, default=10, help="live bars written for fan-out")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETLAKE_")}
    marketlake("run", "--home", str(home), "--symbols", f"{SYMBOL},MSFT", "-q", env=env)
    url = f"duckdb://{home / 'warehouse.duckdb'}"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "serve", "--home", str(home), "--port", str(port)],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        bars = httpx.get(f"{base}/api/v1/bars/{SYMBOL}").json()["data"]
        print(f"one year of daily bars: {len(bars)} rows of {SYMBOL} per request")
        direct = direct_queries(url, 500)
        health = asyncio.run(load(base, "/healthz", args.clients, args.requests))
        api = asyncio.run(load(base, f"/api/v1/bars/{SYMBOL}", args.clients, args.requests))
        print(f"{'':28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        print(
            f"{'GET /healthz (baseline)':28}{health[0]:>10,.0f}{health[1]:>10.1f}{health[2]:>10.1f}"
        )
        print(f"{'GET /api/v1/bars/' + SYMBOL:28}{api[0]:>10,.0f}{api[1]:>10.1f}{api[2]:>10.1f}")
        print(f"{'same query on DuckDB direct':28}{direct:>10,.0f}")
        print(
            f"bars endpoint at {args.clients} clients: {api[0] / health[0]:.2f}x /healthz, "
            f"{api[0] / direct:.2f}x the direct query rate"
        )
        p50, p99, arrivals = asyncio.run(fan_out(base, url, args.listeners, args.bars))
        expected = args.listeners * args.bars
        print(
            f"live fan-out to {args.listeners} SSE clients: {arrivals:,} of {expected:,} bar "
            f"arrivals; write-to-arrival p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"(the feed polls the warehouse every 1 s)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
