"""Everything `cockpit demo` starts, as one context manager: a folder for the plan, state and
audit (temporary, or kept for `cockpit report`), the demo platform, and the demo plan written
into the folder with its pre-flight checklist ticked.

    with DemoSession(DemoOptions(...)) as session:
        session.plan_path   # cockpit.toml: any cockpit command works on it meanwhile

Leaving it stops the platform and removes the folder, unless it was asked to keep it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from cockpit.core.control import Cockpit
from cockpit.core.engine import store_for
from cockpit.core.operator import Operator
from cockpit.core.plan import Plan
from cockpit.core.rollout_events import Check
from cockpit.demo.plan import DemoTarget, write_demo_plan
from cockpit.demo.platform import DemoOptions, DemoPlatform

FOLDER_PREFIX = "cockpit-plan-demo-"
DEMO_OPERATOR = Operator("cockpit-demo")


class KeepError(ValueError):
    """`--keep DIR` names something the demo must not write into; one line for a person."""


def keep_folder(path: Path) -> Path:
    """A folder to keep the demo's files in: new, or existing and empty."""
    if path.exists() and not path.is_dir():
        raise KeepError(f"--keep {path}: not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise KeepError(f"--keep {path}: not empty (name a new or empty folder)")
    return path


def prepare(folder: Path, platform: DemoPlatform, source: Path | None = None) -> Plan:
    """Write the demo plan for `platform` into `folder` and tick the pre-flight checklist.

    The 33 pre-flight items stand for work done before a rollout starts (tests, reviews,
    staging); they are ticked by `cockpit-demo`, recorded in the audit like any tick, so the
    demo begins where a real rollout's first advance does. Each phase's own checks are left
    to the person at the keys.
    """
    target = DemoTarget(platform.urls, platform.options.load_shape.rate)
    plan = write_demo_plan(folder, target, source)
    cockpit = Cockpit(plan=plan, operator=DEMO_OPERATOR, metrics=store_for(plan))
    for item in plan.preflight_checks:
        cockpit.apply(cockpit.load(), Check(by=str(DEMO_OPERATOR), item=item))
    return plan


class DemoSession:
    def __init__(
        self,
        options: DemoOptions | None = None,
        *,
        keep: Path | None = None,
        source: Path | None = None,
    ) -> None:
        self.options = options or DemoOptions(handle_signals=False)
        self.keep = keep
        self.source = source
        self.folder: Path | None = None
        self.platform: DemoPlatform | None = None
        self.plan: Plan | None = None

    @property
    def plan_path(self) -> Path:
        if self.plan is None:
            raise RuntimeError("the demo session is not started")
        return self.plan.config_path

    def __enter__(self) -> DemoSession:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            if self.keep is not None:
                self.folder = keep_folder(self.keep)
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            else:
                self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
            self.platform = DemoPlatform(self.options)
            self.platform.start()
            self.plan = prepare(self.folder, self.platform, self.source)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Idempotent: the platform (servers, API, load), then the folder unless kept."""
        try:
            if self.platform is not None:
                self.platform.stop()
        finally:
            if self.folder is not None and self.keep is None:
                shutil.rmtree(self.folder, ignore_errors=True)
