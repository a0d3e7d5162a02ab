"""The core knows no UI: importing every core module pulls in neither textual nor rich."""

import pkgutil
import subprocess
import sys

import cockpit.core


def core_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(cockpit.core.__path__, prefix="cockpit.core.")]


def test_there_are_core_modules_to_check() -> None:
    assert "cockpit.core.rules" in core_modules()
    assert "cockpit.core.metrics.store" in core_modules()


def test_core_imports_neither_textual_nor_rich() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "leaks = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(leaks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
