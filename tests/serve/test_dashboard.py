"""The dashboard in a real browser: Debian's chromium driven by Playwright.

The page loads and draws its charts from the API; a 1-minute bar arrives while
``marketlake stream`` runs. Screenshots are kept under ``tmp/artifacts`` and named in the
session summary.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from marketlake.catalogue import INDICATORS_1D
from marketlake.serve.app import ServeOptions, create_app
from tests.serve.conftest import ARTIFACTS, Served, keep_artifact, marketlake
from tests.serve.test_api import warehouse_rows
from tests.services.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures for these tests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Distinct colours drawn on the page's canvases (a blank chart has one or two)
CANVAS_COLOURS = """() => {
  const colours = new Set();
  for (const canvas of document.querySelectorAll('#chart canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4 * 7) {
      if (data[i + 3]) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
  }
  return colours.size;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium (Debian's package), shared by the module's tests."""
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the dashboard tests need pip install playwright"
    )
    if not CHROMIUM.exists():
        pytest.skip("the dashboard tests need chromium: apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


class LiveServer:
    """The application served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, options: ServeOptions) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(options), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(600):  # until it listens (bounded)
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under the artifacts folder and name it in the summary."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep_artifact(path)
    return path


def test_the_dashboard_draws_prices_indicators_and_runs(browser: Any, served: Served) -> None:
    errors: list[str] = []
    with LiveServer(served.options()) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}/?symbol=AAPL")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert page.text_content("#chart-title") == "AAPL · 1d · adjusted"
        assert page.get_attribute("body", "data-bars") == "252"
        assert page.get_attribute("body", "data-markers") == "4"  # the sim's dividends
        assert page.locator("#chart canvas").count() > 3  # price, RSI and MACD panes
        assert page.evaluate(CANVAS_COLOURS) > 20
        assert page.locator("#runs tbody tr").count() == 2
        assert page.locator("#runs tbody td.succeeded").count() == 10
        screenshot(page, "dashboard")

        # the page's Content-Security-Policy forbids evaluated strings: wait on the DOM
        offered = page.locator("#extra option").all_text_contents()
        computed = [c for c in INDICATORS_1D.columns if c not in ("symbol", "ts")]
        assert offered == ["none", *computed]  # whatever the [indicators] set computes
        page.select_option("#extra", "rsi_14")
        (stored,) = warehouse_rows(
            served, "SELECT count(rsi_14) AS n FROM indicators_1d WHERE symbol = 'AAPL'"
        )
        page.wait_for_selector(f"body[data-extra-points='{stored['n']}']")  # NULLs not drawn
        page.uncheck("#adjusted")
        page.wait_for_selector("#chart-title:text('AAPL · 1d · as traded')")
        page.select_option("#symbol", "IBM")
        page.wait_for_selector("#quality-summary:has-text('missing_session')")
        assert "quarantine" in page.text_content("#quality-summary")
        page.select_option("#interval", "5m")
        page.select_option("#symbol", "MSFT")
        page.wait_for_selector("#chart-title:text('MSFT · 5m · as traded')")
        page.close()
    assert errors == []


def test_a_live_bar_arrives_while_a_stream_runs(
    browser: Any, postgres_url: str, tmp_path: Path, served: Served
) -> None:
    # PostgreSQL lets the page read while the stream writes
    home = tmp_path / "home"
    marketlake(
        served.env,
        "run",
        "--home",
        str(home),
        "--warehouse",
        postgres_url,
        "--symbols",
        "AAPL",
        "--start",
        "2024-10-01",
        "--end",
        "2024-12-31",
        "-q",
    )
    options = ServeOptions(postgres_url, home, live_interval_s=0.5)
    with LiveServer(options) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(f"{server.url}/?symbol=AAPL")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert page.get_attribute("body", "data-live-bars") is None
        stream = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketlake",
                "stream",
                "--home",
                str(home),
                "--warehouse",
                postgres_url,
                "--symbols",
                "AAPL",
                "--rate",
                "400",
                "--event-rate",
                "20",
                "--duration",
                "120",
                "-q",
            ],
            env=served.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            page.wait_for_selector("body[data-live-bars]", timeout=90_000)
            for _ in range(600):  # a few more updates (bounded)
                if int(page.get_attribute("body", "data-live-bars") or 0) >= 3:
                    break
                page.wait_for_timeout(100)
            assert int(page.get_attribute("body", "data-live-bars") or 0) >= 3
            assert stream.poll() is None  # the stream was still running
            screenshot(page, "dashboard-live")
        finally:
            stream.terminate()
            _, stderr = stream.communicate(timeout=60)
        assert "Traceback" not in stderr.decode()
        page.close()
