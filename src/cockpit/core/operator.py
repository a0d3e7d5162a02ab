"""Who is at the keys: the Unix user, and the SSH client's address when there is one."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Operator:
    user: str
    address: str | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.address}" if self.address else self.user


def current_operator(environ: Mapping[str, str] | None = None) -> Operator:
    """The operator of this process: $USER, then $LOGNAME, then the password database, then uid.

    The address is the first field of $SSH_CLIENT ("10.0.0.5 52311 22"), so audit lines show
    where a change came from when two people share a bastion host.
    """
    env = os.environ if environ is None else environ
    user = env.get("USER", "").strip() or env.get("LOGNAME", "").strip() or _user_from_uid()
    fields = env.get("SSH_CLIENT", "").split()
    return Operator(user=user, address=fields[0] if fields else None)


def _user_from_uid() -> str:
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (common in containers)
        return f"uid:{uid}"
