"""What `pip install .` puts outside the repo: the themes, the stylesheet and `cockpit init`'s
starter travel inside the wheel, so an installed cockpit finds them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_the_wheel_carries_themes_and_stylesheet(tmp_path: Path) -> None:
    # Build from a copy: pip builds in the source tree and would leave build/ in the repo.
    source = tmp_path / "source"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=junk)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("cockpit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for theme in ("dark", "light", "high-contrast", "mono"):
        assert f"cockpit/tui/themes/{theme}.toml" in names
    assert "cockpit/tui/cockpit.tcss" in names
    assert "cockpit/py.typed" in names
    assert "cockpit/templates/starter.toml" in names  # `cockpit init` writes it
