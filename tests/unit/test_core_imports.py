"""The core knows no UI: importing every core module pulls in neither textual nor rich."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import cockpit.core

CORE = Path(cockpit.core.__file__).parent


def core_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(cockpit.core.__path__, prefix="cockpit.core.")]


def test_there_are_core_modules_to_check() -> None:
    assert "cockpit.core.rules" in core_modules()
    assert "cockpit.core.metrics.store" in core_modules()


def test_no_core_file_imports_textual_or_rich() -> None:
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("textual", "rich"), f"{path}: {name}"


def test_core_imports_neither_textual_nor_rich_at_run_time() -> None:
    # httpx loads rich for its own command-line tool when click is installed (uvicorn brings
    # click); that is httpx's optional CLI, not ours, so the probe hides click.
    code = (
        "import importlib, sys\n"
        "sys.modules['click'] = None\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "leaks = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(leaks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
