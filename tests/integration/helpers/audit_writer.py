"""Appends audit lines until killed; prints `ready` after its first append (which repairs a
line torn by the previous writer, if any).

`loop PATH`: appends lines of random size (up to 500 kB of "action output") in a tight loop.
`tear PATH`: appends one 8 MB line and prints `writing` just before the bytes go to the file,
so the parent can SIGKILL it inside the write (the kernel then leaves part of the line).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from cockpit.core import audit
from cockpit.core.audit import AuditLog
from cockpit.core.operator import Operator


def main(mode: str, path: str) -> None:
    log = AuditLog(Path(path))
    who = Operator("writer", "10.0.0.9")
    log.append("writer_started", operator=who)
    print("ready", flush=True)
    if mode == "tear":
        real_write_all = audit.write_all

        def announced(fd: int, data: bytes) -> None:
            print("writing", flush=True)
            real_write_all(fd, data)

        audit.write_all = announced
        log.append("action_output", operator=who, output="t" * 8_000_000)
        audit.write_all = real_write_all  # not killed in time: carry on like `loop`
    n = 0
    while True:
        n += 1
        size = random.choice([0, 100, 5_000, 100_000, 500_000])
        log.append("action_output", operator=who, phase=n % 3, output="o" * size, n=n)


if __name__ == "__main__":
    main(*sys.argv[1:])
