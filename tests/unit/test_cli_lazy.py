"""Every command resolves to its function, and starting `cockpit` loads only what the
command needs: no demo platform, web server or UI for `cockpit status`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cockpit.cli import HANDLERS, handler


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_every_command_resolves(command: str) -> None:
    assert callable(handler(command))


def test_the_command_line_loads_no_demo_server_or_ui() -> None:
    # (rich is not in the list: httpx's own command line module imports it when installed.)
    code = (
        "import sys, cockpit.cli; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'starlette', 'uvicorn') or m.startswith(('cockpit.demo', 'cockpit.tui'))); "
        "print(heavy)"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
