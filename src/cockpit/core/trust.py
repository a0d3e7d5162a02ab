"""Refuse to act on a config file or state folder that someone else could change.

The commands in `cockpit.toml` run with the operator's privileges, so whoever can change that
file, or replace it, chooses what runs as the operator; whoever can write the state folder can
rewrite the rollout's state and journal. Like ssh with `authorized_keys`, the cockpit checks
the file, the folder and every folder above them up to `/`, and says why it refuses.

A path is trusted when nobody but the operator's own circle can write it or its name:
- it is not writable by everyone, nor by a group the operator is not in (os.getgroups() plus
  the primary group). A group-writable folder of a group the operator is in is fine: that is
  how the on-call and the release lead share a setgid state folder.
- its owner (who can always chmod it) is the operator, root, or a member of the path's group
  when the operator is in that group too. The release lead may own the shared config; a
  stranger may not.
- a folder above the target that is world- or group-writable but sticky (/tmp) is fine: in a
  sticky folder only an entry's owner (checked above), the folder's owner and root can rename
  or delete it. The state folder itself must not be such a folder: anyone could create the
  state file or the journal in it first.
A symlinked path is checked both as written and where it leads. A state folder that does not
exist yet is judged by the nearest folder that does, where it will be created. POSIX ACLs
are not read.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.plan import Plan


@dataclass(frozen=True)
class _Operator:
    uid: int
    groups: frozenset[int]


def check_trust(
    config_path: Path,
    state_folder: Path,
    *,
    uid: int | None = None,
    groups: Collection[int] | None = None,
) -> str | None:
    """Why no action may run with this config and state folder (one line), or None if fine.

    `uid` and `groups` default to the calling process's (effective uid; supplementary,
    real and effective groups).
    """
    operator = _Operator(
        os.geteuid() if uid is None else uid,
        frozenset({*os.getgroups(), os.getgid(), os.getegid()} if groups is None else groups),
    )
    problem = _check_chain(config_path, operator)
    if problem is not None:
        return f"refusing to run actions: {config_path} runs commands as you, but {problem}"
    problem = _check_chain(_existing(Path(os.path.abspath(state_folder))), operator)
    if problem is not None:
        return f"refusing to run actions: the state folder {state_folder} is not safe: {problem}"
    return None


def check_plan_trust(plan: Plan) -> str | None:
    """`check_trust` for a plan's config, its state folder and its journal's folder."""
    for folder in dict.fromkeys((plan.state_path.parent, plan.audit_path.parent)):
        problem = check_trust(plan.config_path, folder)
        if problem is not None:
            return problem
    return None


def _existing(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists: where it will be created."""
    while path != path.parent:
        try:
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            path = path.parent
            continue
        except OSError:
            pass  # there, but not to be looked at: the check says so
        return path
    return path


def _check_chain(target: Path, operator: _Operator) -> str | None:
    """The first problem with `target` or a folder above it, as written and as resolved."""
    written = Path(os.path.abspath(target))
    for start in dict.fromkeys((written, written.resolve())):
        for number, path in enumerate((start, *start.parents)):
            try:
                info = os.stat(path)
            except OSError as err:
                return f"{path} cannot be checked: {err.strerror or err}"
            problem = _check_one(path, info, operator, above=number > 0)
            if problem is not None:
                return problem
    return None


def _check_one(path: Path, info: os.stat_result, operator: _Operator, above: bool) -> str | None:
    mode = stat.S_IMODE(info.st_mode)
    quoted = shlex.quote(str(path))
    shown = f"(mode {mode:04o})"
    sticky = above and stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX
    if mode & stat.S_IWOTH and not sticky:
        return f"{path} is writable by anyone {shown}; fix: chmod o-w {quoted}"
    if mode & stat.S_IWGRP and info.st_gid not in operator.groups and not sticky:
        return (
            f"{path} is writable by group {_group(info.st_gid)}, which you are not in "
            f"{shown}; fix: chmod g-w {quoted}, or use a group you are in"
        )
    owner = info.st_uid
    if owner in (operator.uid, 0):
        return None
    if info.st_gid in operator.groups and _member(owner, info.st_gid):
        return None
    return (
        f"{path} is owned by {_user(owner)}, who is not you, not root, and not in its group "
        f"{_group(info.st_gid)} with you; fix: chown it to yourself or root"
    )


def _member(uid: int, gid: int) -> bool:
    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return False  # no such user: nobody we know of
    if user.pw_gid == gid:
        return True
    try:
        return user.pw_name in grp.getgrgid(gid).gr_mem
    except KeyError:
        return False


def _user(uid: int) -> str:
    try:
        return repr(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return repr(grp.getgrgid(gid).gr_name)
    except KeyError:
        return f"gid {gid}"
