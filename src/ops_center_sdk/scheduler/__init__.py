"""Background tasks for plugins: cron jobs, one-shot runs, and the clocks they read.

>>> from ops_center_sdk.scheduler import Scheduler, ManualClock
>>> scheduler = Scheduler(owner="my-plugin", clock=ManualClock())

See :mod:`ops_center_sdk.scheduler.scheduler` for the rules (failures,
overlapping runs, persistence, misfires) and :mod:`.cron` for the cron syntax.
"""

from __future__ import annotations

from .clock import Clock, ManualClock, SystemClock
from .cron import CronSchedule, parse_cron
from .scheduler import Scheduler

__all__ = ["Clock", "CronSchedule", "ManualClock", "Scheduler", "SystemClock", "parse_cron"]
