"""The command line as a user's process starts it: ``main`` builds only the command named on
the command line, and the whole command line otherwise (help, unknown commands)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from marketlake.cli.app import GROUPS, build_app, commands
from tests.pipeline.cli import marketlake_process


def marketlake(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m marketlake ARGS`` in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "marketlake", *args], capture_output=True, text=True, timeout=60
    )


def test_the_help_lists_every_command_and_group() -> None:
    result = marketlake("--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")}
    top = {info.name or info.callback.__name__ for info in commands.registered_commands}  # type: ignore[union-attr]
    assert top | set(GROUPS) <= listed
    assert "pip install" in result.stdout and "'marketlake[airflow]'" in result.stdout


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_group_answers_its_help(group: str) -> None:
    result = marketlake(group, "--help")
    assert result.returncode == 0, result.stderr
    assert f"marketlake {group} [OPTIONS] COMMAND" in result.stdout


def test_a_run_imports_no_command_group() -> None:
    """``marketlake run`` builds only ``run``: the groups' modules are not imported."""
    probe = (
        "import sys; from marketlake.cli.app import build_app; "
        "build_app('run'); print(sorted(m for m in sys.modules if m.startswith('marketlake.cli')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    for module, _ in GROUPS.values():
        assert module not in loaded


def test_a_mistyped_command_is_matched_against_the_whole_command_line() -> None:
    result = marketlake("strem")
    assert result.returncode == 2
    assert "Did you mean 'stream'?" in result.stderr


def test_a_named_command_is_built_alone_and_others_whole() -> None:
    single = build_app("run")
    assert [info.callback.__name__ for info in single.registered_commands] == ["run"]  # type: ignore[union-attr]
    assert not single.registered_groups
    assert len(build_app("strem").registered_groups) == len(GROUPS)


def test_the_warehouse_option_names_every_warehouse_it_opens() -> None:
    from marketlake.warehouse.registry import ADAPTERS

    result = marketlake_process("run", "--help", env={"COLUMNS": "300"}, timeout=60)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "--warehouse" in line)
    named = set(re.findall(r"([a-z]+)://", line))
    assert named == set(ADAPTERS) - {"postgres"}  # postgres:// is postgresql://'s alias
