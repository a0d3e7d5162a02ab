"""Refusing configs and state folders others can write: real files, modes and owners.

The tests run as root; a non-root operator is simulated with `uid`/`groups`. `daemon`
(uid 1, gid 1) and `nobody`/`nogroup` (65534) are users and groups root is not in.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from cockpit.core.catalog import Catalog
from cockpit.core.plan import Phase, Plan
from cockpit.core.trust import check_plan_trust, check_trust

DAEMON = 1
NOBODY = 65534
OPERATOR = 4242  # a user with no passwd entry: neither root nor anyone else


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A safe rollout folder: r/cockpit.toml (0644) and r/.cockpit (0755), all root's."""
    folder = tmp_path / "r"
    folder.mkdir(mode=0o755)
    config = folder / "cockpit.toml"
    config.write_text("[rollout]\n")
    config.chmod(0o644)
    state = folder / ".cockpit"
    state.mkdir(mode=0o755)
    return config, state


def test_a_safe_layout_passes(layout: tuple[Path, Path]) -> None:
    config, state = layout
    assert os.geteuid() == 0  # what the other tests assume: root, in group root only
    assert os.getgroups() in ([], [0])
    assert check_trust(config, state) is None


def test_world_writable_config_is_refused(layout: tuple[Path, Path]) -> None:
    config, state = layout
    config.chmod(0o666)
    assert check_trust(config, state) == (
        f"refusing to run actions: {config} runs commands as you, but {config} is writable "
        f"by anyone (mode 0666); fix: chmod o-w {config}"
    )


def test_world_writable_folder_above_is_refused(layout: tuple[Path, Path]) -> None:
    config, state = layout
    config.parent.parent.chmod(0o777)
    problem = check_trust(config, state)
    assert problem is not None
    assert f"but {config.parent.parent} is writable by anyone (mode 0777)" in problem


def test_sticky_folder_above_is_fine_but_not_as_the_state_folder(
    layout: tuple[Path, Path],
) -> None:
    config, state = layout
    config.parent.chmod(0o1777)  # like /tmp: others cannot rename our entries
    assert check_trust(config, state) is None
    state.chmod(0o1777)  # but anyone could create the state file in it first
    assert check_trust(config, state) == (
        f"refusing to run actions: the state folder {state} is not safe: {state} is "
        f"writable by anyone (mode 1777); fix: chmod o-w {state}"
    )


def test_group_writable_by_a_group_you_are_not_in_is_refused(
    layout: tuple[Path, Path],
) -> None:
    config, state = layout
    os.chown(config, 0, NOBODY)
    config.chmod(0o664)
    assert check_trust(config, state) == (
        f"refusing to run actions: {config} runs commands as you, but {config} is writable "
        f"by group 'nogroup', which you are not in (mode 0664); fix: chmod g-w {config}, "
        "or use a group you are in"
    )
    os.chown(config, 0, 0)  # root's own group: fine
    assert check_trust(config, state) is None


def test_a_shared_setgid_folder_works_for_both_operators(layout: tuple[Path, Path]) -> None:
    # The release lead (daemon here) owns the config in a setgid folder of their group;
    # the on-call (OPERATOR) is in that group too.
    config, state = layout
    for folder in (config.parent, state):
        os.chown(folder, 0, DAEMON)
        folder.chmod(0o2775)
    os.chown(config, DAEMON, DAEMON)
    config.chmod(0o664)
    assert check_trust(config, state, uid=OPERATOR, groups={DAEMON}) is None
    assert check_trust(config, state, uid=DAEMON, groups={DAEMON}) is None
    outsider = check_trust(config, state, uid=OPERATOR, groups={NOBODY})
    assert outsider is not None
    assert f"but {config} is writable by group 'daemon', which you are not in" in outsider


def test_owner_must_be_you_root_or_in_its_group_with_you(layout: tuple[Path, Path]) -> None:
    config, state = layout
    os.chown(config, NOBODY, DAEMON)  # 0644: only nobody can write it, and may chmod it
    assert check_trust(config, state) == (
        f"refusing to run actions: {config} runs commands as you, but {config} is owned by "
        "'nobody', who is not you, not root, and not in its group 'daemon' with you; "
        "fix: chown it to yourself or root"
    )
    # Even an operator in group daemon does not trust nobody, who is not in it.
    assert check_trust(config, state, uid=OPERATOR, groups={DAEMON}) is not None
    os.chown(config, OPERATOR, DAEMON)
    assert check_trust(config, state, uid=OPERATOR, groups=set()) is None
    problem = check_trust(config, state)
    assert problem is not None
    assert "owned by uid 4242, who is not you" in problem


def test_missing_state_folder_is_judged_where_it_will_be_created(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    config, _ = layout
    missing = config.parent / "new" / "state"
    assert check_trust(config, missing) is None
    elsewhere = tmp_path / "open" / "new" / "state"
    elsewhere.parent.parent.mkdir()
    elsewhere.parent.parent.chmod(0o777)
    assert check_trust(config, elsewhere) == (
        f"refusing to run actions: the state folder {elsewhere} is not safe: {tmp_path / 'open'} "
        f"is writable by anyone (mode 0777); fix: chmod o-w {tmp_path / 'open'}"
    )


def test_a_config_that_cannot_be_checked_is_refused(layout: tuple[Path, Path]) -> None:
    _, state = layout
    gone = state.parent / "gone.toml"
    assert check_trust(gone, state) == (
        f"refusing to run actions: {gone} runs commands as you, but {gone} cannot be "
        "checked: No such file or directory"
    )


def test_symlinks_are_checked_as_written_and_where_they_lead(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    config, state = layout
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    target = open_folder / "real.toml"
    target.write_text("")
    link = config.parent / "link.toml"
    link.symlink_to(target)
    problem = check_trust(link, state)
    assert problem is not None
    assert f"but {open_folder} is writable by anyone" in problem
    link_in_open = open_folder / "cockpit.toml"
    link_in_open.symlink_to(config)  # anyone could point it elsewhere
    problem = check_trust(link_in_open, state)
    assert problem is not None
    assert f"but {open_folder} is writable by anyone" in problem


def test_plan_trust_checks_the_journal_folder_too(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    config, state = layout
    journal = tmp_path / "journal"
    journal.mkdir()
    plan = Plan(
        name="t",
        config_path=config,
        state_path=state / "state.toml",
        audit_path=state / "audit.jsonl",
        sources={},
        catalog=Catalog({}),
        phases=(Phase("one", 100, 0.0),),
    )
    assert check_plan_trust(plan) is None
    journal.chmod(0o777)
    moved = replace(plan, audit_path=journal / "audit.jsonl")
    assert check_plan_trust(moved) == (
        f"refusing to run actions: the state folder {journal} is not safe: {journal} is "
        f"writable by anyone (mode 0777); fix: chmod o-w {journal}"
    )
