"""The ``[serve]`` settings: flags > environment > file > defaults; the token stays secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketlake.errors import ConfigError
from marketlake.settings import load_settings, masked


def test_defaults_listen_on_loopback_without_token() -> None:
    serve = load_settings().serve
    assert (serve.host, serve.port, serve.token) == ("127.0.0.1", 8000, None)


def test_file_environment_and_flags_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "marketlake.toml"
    config.write_text('[serve]\nhost = "0.0.0.0"\nport = 9000\ntoken = "from-file"\n')
    monkeypatch.setenv("MARKETLAKE_SERVE__PORT", "9001")
    settings = load_settings(config=config, serve={"token": "from-flag", "host": None})
    assert settings.serve.host == "0.0.0.0" and settings.serve.port == 9001
    assert settings.serve.token is not None
    assert settings.serve.token.get_secret_value() == "from-flag"
    shown = json.dumps(masked(settings))
    assert "from-flag" not in shown and "from-file" not in shown


def test_a_bad_port_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"invalid configuration: serve\.port"):
        load_settings(serve={"port": 70000})
