"""``marketlake serve`` on the command line: the serving packages stay off the other
commands' path, and a missing extra is named."""

from __future__ import annotations

import subprocess
import sys

from tests.serve.conftest import Served

SERVING = ("fastapi", "starlette", "uvicorn", "prometheus_client")


def python(served: Served, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=served.env,
        timeout=120,
        check=False,
    )


def test_other_commands_import_nothing_of_serving(served: Served) -> None:
    proc = python(
        served,
        "import sys\n"
        "from marketlake.cli.app import main\n"
        f"sys.argv = ['marketlake', 'sql', '--home', {str(served.home)!r}, 'SELECT 1 AS one']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVING!r}))\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_a_missing_serve_extra_is_named(served: Served) -> None:
    proc = python(
        served,
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if it were not installed\n"
        "from marketlake.cli.app import main\n"
        f"sys.argv = ['marketlake', 'serve', '--home', {str(served.home)!r}]\n"
        "main()\n",
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: fastapi is not installed; install it with: pip install 'marketlake[serve]'"
    )
