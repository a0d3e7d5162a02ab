"""Every broken config in tests/corpus/configs, and the files no corpus can hold (empty, huge,
unreadable, a folder, a device, a dangling link...), through the real command line.

Each corpus file says on its first line what `cockpit validate -c FILE` must answer:
`# error: {file}:LINE: KEY: message` ({file} is the path as given). Each must give exactly
that one line on stderr, nothing on stdout, exit 2, never a traceback — through
`cockpit.cli.main` for all of them, and through `python -m cockpit` for a sample.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import cockpit
from cockpit.cli import main
from cockpit.core.config import MAX_BYTES, ConfigError, load_plan

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "configs"
FILES = sorted(CORPUS.glob("*.toml"))
SRC = Path(cockpit.__file__).resolve().parents[1]
# Every variable the corpus names, so none of them is set while it runs.
VARIABLES = sorted(
    {m for f in FILES for m in re.findall(rb"\$\{([A-Za-z0-9_]+)", f.read_bytes())}
    | {b"COCKPIT_CONFIG"}
)
MINIMAL = '[rollout]\nname = "r"\n\n[[phase]]\nname = "one"\ntraffic = 100\n'
ROOT = os.geteuid() == 0
# Root reads any file; without these capabilities it cannot, as an operator could not.
NO_BYPASS = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def expected(path: Path, shown: str) -> str:
    header = path.read_bytes().removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0].decode()
    assert header.startswith("# error: "), f"{path.name}: no `# error:` line first"
    return header.removeprefix("# error: ").replace("{file}", shown)


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name.decode(), raising=False)


def validate(shown: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["validate", "-c", shown])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_is_large_and_each_file_different() -> None:
    assert len(FILES) >= 60
    assert len({f.read_bytes() for f in FILES}) == len(FILES)
    assert all(re.fullmatch(r"\d{3}-[a-z0-9-]+\.toml", f.name) for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_each_broken_config_gives_one_line_and_exit_2(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    code, out, err = validate(path.name, capsys)
    assert (code, out) == (2, "")
    assert err == f"cockpit: {expected(path, path.name)}\n"
    with pytest.raises(ConfigError) as caught:  # the same, as data: file, line and key apart
        load_plan(Path(path.name), environ={})
    error = caught.value
    assert error.file == path.name
    where = f"{path.name}:{error.line}: " if error.line is not None else f"{path.name}: "
    assert str(error).startswith(where + (f"{error.key}: " if error.key else ""))


# -- files the corpus folder cannot hold --------------------------------------------------


@dataclass(frozen=True)
class Special:
    make: Callable[[Path], str]  # builds it under the folder; returns the path to give -c
    error: str  # what to answer, {file} for the path as given
    needs_no_bypass: bool = False  # refused only to a reader without root's override


def _write(name: str, data: bytes) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / name).write_bytes(data)
        return str(folder / name)

    return make


def _huge(folder: Path) -> str:
    path = folder / "huge.toml"
    with path.open("wb") as f:
        f.write(MINIMAL.encode() + b"#" * (MAX_BYTES + 1) + b"\n")
    return str(path)


def _folder(folder: Path) -> str:
    (folder / "cockpit.toml").mkdir()
    return str(folder / "cockpit.toml")


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "fifo.toml")
    return str(folder / "fifo.toml")


def _link(target: str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        (folder / "link.toml").symlink_to(target)
        return str(folder / "link.toml")

    return make


def _loop(folder: Path) -> str:
    (folder / "a.toml").symlink_to("b.toml")
    (folder / "b.toml").symlink_to("a.toml")
    return str(folder / "a.toml")


def _unreadable(folder: Path) -> str:
    path = folder / "secret.toml"
    path.write_text(MINIMAL)
    path.chmod(0)
    return str(path)


LINK = "no such file: a symbolic link to {target} that leads nowhere (or in a loop) (named by -c)"
NO_FILE = "{file}: no such file (named by -c)"
NO_HOME = "{file}: cannot find the home folder of '~no-such-user-cockpit' (named by -c)"
NOT_REGULAR = "{file}: cannot read: not a regular file, not a config file"
PNG = b"\x89PNG\r\n\x1a\n\0\0"
UTF16 = MINIMAL.encode("utf-16")
SPECIALS = {
    "empty": Special(_write("empty.toml", b""), "{file}: rollout: missing required key"),
    "huge": Special(_huge, "{file}: cannot read: larger than 1 MiB: not a plan (a log or a dump?)"),
    "binary": Special(_write("logo.toml", PNG), "{file}:1: not UTF-8 text (byte 0x89)"),
    "utf-16": Special(_write("wide.toml", UTF16), "{file}:1: not UTF-8 text (byte 0xff)"),
    "folder": Special(_folder, "{file}: cannot read: a directory, not a config file"),
    "fifo": Special(_fifo, NOT_REGULAR),
    "device": Special(lambda folder: "/dev/null", NOT_REGULAR),
    "dangling link": Special(_link("gone.toml"), "{file}: " + LINK.format(target="'gone.toml'")),
    "link loop": Special(_loop, "{file}: " + LINK.format(target="'b.toml'")),
    "missing": Special(lambda folder: str(folder / "nowhere.toml"), NO_FILE),
    "missing folder": Special(lambda folder: str(folder / "no" / "cockpit.toml"), NO_FILE),
    "home of no user": Special(lambda folder: "~no-such-user-cockpit/cockpit.toml", NO_HOME),
    "unreadable": Special(_unreadable, "{file}: cannot read: permission denied", True),
}  # fmt: skip


# Root reads any file in this process; test_sample_through_the_real_command drops that right.
IN_PROCESS = [name for name, special in SPECIALS.items() if not (special.needs_no_bypass and ROOT)]


@pytest.mark.parametrize("name", IN_PROCESS)
def test_files_that_are_not_plans(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    special = SPECIALS[name]
    shown = special.make(tmp_path)
    code, out, err = validate(shown, capsys)
    assert (code, out) == (2, "")
    assert err == f"cockpit: {special.error.format(file=shown)}\n"


@pytest.mark.integration
def test_sample_through_the_real_command(tmp_path: Path) -> None:
    """`python -m cockpit validate -c F` in its own process, for every special and one corpus
    file in 14: one line, exit 2, no traceback (all started at once, then collected)."""
    env = {k: v for k, v in os.environ.items() if k.encode() not in VARIABLES}
    env["PYTHONPATH"] = str(SRC)
    runs: list[tuple[str, str, subprocess.Popen[str]]] = []

    def start(shown: str, error: str, prefix: list[str] | None = None) -> None:
        argv = [*(prefix or []), sys.executable, "-m", "cockpit", "validate", "-c", shown]
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=CORPUS
        )
        runs.append((shown, error, child))

    for path in FILES[::14]:
        start(path.name, expected(path, path.name))
    for name, special in SPECIALS.items():
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        shown = special.make(folder)
        prefix = None
        if special.needs_no_bypass and ROOT:
            if shutil.which("setpriv") is None:
                continue  # nothing to drop root's override with: the unprivileged run covers it
            prefix = NO_BYPASS
        start(shown, special.error.format(file=shown), prefix)
    wrong = []
    for shown, error, child in runs:
        out, err = child.communicate(timeout=120)
        if (child.returncode, out, err) != (2, "", f"cockpit: {error}\n"):
            wrong.append(f"{shown}: exit {child.returncode}, stdout {out!r}, stderr {err!r}")
    assert wrong == []
    assert len(runs) >= 20
