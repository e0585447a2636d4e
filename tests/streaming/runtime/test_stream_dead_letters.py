"""A message the processor cannot use goes to the dead letters; the stream moves on past it."""

from __future__ import annotations

from pathlib import Path

from marketlake.bus.local.bus import LocalBus
from pipeline.cli import marketlake, sql_json
from streaming.runtime.stream_checks import SIM_ARGS, lake, sim_ticks, tick_keys


def _produce(home: Path, count: int) -> None:
    proc = marketlake(
        "stream", "produce", "--home", str(home), "--count", str(count), "--event-rate", "2",
        "--quiet", *SIM_ARGS,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_undecodable_message_is_dead_lettered_and_the_stream_moves_on(home: Path) -> None:
    count = 4_000
    _produce(home, count)
    bus = LocalBus(home / "bus")
    with bus.producer() as producer:  # bytes that are no tick batch, keyed like a tick message
        producer.send("ticks", "AAPL", b"not an Arrow stream", {"content-type": "text/plain"})

    proc = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
    assert proc.returncode == 0, proc.stderr
    assert "dead letters 1 " in proc.stdout
    assert "lag 0 msgs" in proc.stdout

    rows = sql_json(
        home, "SELECT topic, message_key, ticks, stage, error, consumer_group FROM dead_letters"
    )
    assert len(rows) == 1
    assert rows[0]["topic"] == "ticks" and rows[0]["message_key"] == "AAPL"
    assert rows[0]["ticks"] is None and rows[0]["stage"] == "decode"
    assert rows[0]["error"].startswith("TerminalError: cannot decode a tick batch of 19 bytes")
    assert rows[0]["consumer_group"] == "stream-processor"
    tables = lake(home)
    assert tables.read("quality/dead_letters").num_rows == 1
    # every tick landed, and the bad message is not read again
    assert tick_keys(tables.read("curated/ticks")) == tick_keys(sim_ticks(count, 2))
    again = marketlake("stream", "process", "--home", str(home), "--until-caught-up")
    assert again.returncode == 0, again.stderr
    assert "dead letters 0 " in again.stdout
    assert sql_json(home, "SELECT count(*) AS n FROM dead_letters") == [{"n": 1}]
