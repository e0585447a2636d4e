"""Symbols with ``^ . = -`` in them go end to end: raw file names are safe and reversible."""

from __future__ import annotations

import gzip
from pathlib import Path

from marketlake.lake.raw import batch_id_of, raw_name
from tests.pipeline.cli import marketlake, sql_json
from tests.pipeline.raw_payloads import payload_symbols, symbols_kept
from tests.providers.replay import ProviderServer, Reply, Seen

RECORDED = {  # symbol -> recorded Yahoo chart body (tests/data/MANIFEST.csv)
    "BTC-USD": "yahoo_chart/bodies/chart-BTC-USD-2020-01-01-to-2020-01-03.body.json",
    "EURUSD=X": "yahoo_chart/bodies/chart-EURUSD_X-2020-01-01-to-2020-01-03.body.json",
}


def no_events(symbol: str) -> dict[str, object]:
    """A Yahoo chart result with no bars and no events."""
    return {"meta": {"symbol": symbol}, "events": {}, "indicators": {"quote": [{}]}}


def test_index_share_class_fx_and_crypto_symbols_run_end_to_end(home: Path) -> None:
    symbols = ["^GSPC", "BRK.B", "EURUSD=X", "BTC-USD"]
    proc = marketlake(
        "run", "--home", str(home), "--symbols", ",".join(symbols),
        "--start", "2024-01-02", "--end", "2024-03-28",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_json(home, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY 1 ORDER BY 1")
    assert {r["symbol"] for r in rows} == set(symbols)
    assert len({r["n"] for r in rows}) == 1
    for table in ("bars_1d_adjusted", "daily_metrics", "indicators_1d"):
        loaded = sql_json(home, f"SELECT DISTINCT symbol FROM {table}")
        assert {r["symbol"] for r in loaded} == set(symbols), table
    raw = sorted((home / "lake" / "raw" / "sim").rglob("*.json.gz"))
    assert symbols_kept(raw) == dict.fromkeys(symbols, 1)
    for path in raw:  # the name, escaped, gives back the batch id of the symbols it holds
        batch_id = batch_id_of(path.relative_to(home / "lake").as_posix())
        held = payload_symbols(path.read_bytes())
        assert batch_id.startswith(f"{held[0]}-{held[-1]}-{len(held)}-")
        assert batch_id.endswith("-2024-01-02-2024-03-28")
        assert path.name[0] != "." and "^" not in path.name


def test_recorded_yahoo_fx_and_crypto_charts_load(
    real_data: Path, server: ProviderServer, home: Path
) -> None:
    bodies = {s: (real_data / path).read_bytes() for s, path in RECORDED.items()}

    def route(seen: Seen) -> Reply | None:
        symbol = seen.path.rsplit("/", 1)[-1]
        if symbol not in bodies:
            return None
        if seen.query.get("interval") == "1mo":  # splits after the range: none
            return Reply.json({"chart": {"result": [no_events(symbol)], "error": None}})
        return Reply(200, bodies[symbol], {"Content-Type": "application/json"})

    server.route = route
    proc = marketlake(
        "run", "--home", str(home), "--source", "yahoo", "--symbols", ",".join(RECORDED),
        "--start", "2020-01-02", "--end", "2020-01-03",
        env={"MARKETLAKE_SOURCES__YAHOO__BASE_URL": server.url},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_json(home, "SELECT symbol, CAST(ts AS DATE) AS day FROM bars_1d ORDER BY symbol, ts")
    assert [(r["symbol"], r["day"]) for r in rows] == [
        (s, d) for s in sorted(RECORDED) for d in ("2020-01-02", "2020-01-03")
    ]
    raw = (home / "lake" / "raw" / "yahoo").rglob("*.json.gz")
    stored = {batch_id_of(p.relative_to(home / "lake").as_posix()): p for p in raw}
    for symbol, body in bodies.items():
        assert gzip.decompress(stored[f"{symbol}-2020-01-02-2020-01-03"].read_bytes()) == body


def test_raw_names_round_trip() -> None:
    for batch_id in ("^GSPC-2024", "BRK.B-2024", "EURUSD=X-1", "A..B", ".x", "x.", "50%-off"):
        name = raw_name(batch_id)
        assert ".." not in name and not name.startswith(".") and "/" not in name
        assert batch_id_of(f"raw/sim/bars_1d/ingest_date=2024-01-02/{name}.json.gz") == batch_id
