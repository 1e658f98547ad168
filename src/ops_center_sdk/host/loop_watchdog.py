"""The loop-lag watchdog: which in-process plugin handler held the event loop, and how long.

An in-process plugin shares the host's event loop: an ``async`` handler
that calls ``time.sleep`` (or any blocking code) holds every REST call,
event and route of the host until it returns. Nothing inside the loop can
notice while it happens, so two parties watch:

- the loop stamps a **heartbeat** every 20 ms (:meth:`LoopWatchdog.beat`);
  a beat that comes more than the threshold late ends a block, which is
  reported (on the loop, so the host may update its records freely);
- a daemon **thread** looks at the stamp every 20 ms; once it is older than
  the threshold, the loop is stuck right now, and the thread takes the loop
  thread's stack (:func:`sys._current_frames`). That is how the block gets
  a name: :func:`blame` finds the outermost frame of the stack whose code
  is in an in-process plugin's folder, i.e. the handler the host called.

The hot paths pay nothing: no context variable is set around handlers, and
the thread reads one float 50 times a second. The threshold is
``OPS_CENTER_LOOP_BLOCK_MS`` (default 100 ms; ``0`` turns the watchdog off).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

log = logging.getLogger("ops_center_sdk.host.watchdog")

#: The environment variable giving the threshold, in milliseconds (0: off).
BLOCK_ENV: Final = "OPS_CENTER_LOOP_BLOCK_MS"
DEFAULT_THRESHOLD: Final = 0.1
HEARTBEAT: Final = 0.02
_MAX_FRAMES: Final = 200


@dataclass(frozen=True)
class StackFrame:
    """One frame of the loop thread's stack, as seen while the loop was blocked."""

    filename: str
    qualname: str
    line: int


@dataclass(frozen=True)
class LoopBlock:
    """The loop ran nothing else for ``ms`` milliseconds; ``stack`` innermost first.

    ``stack`` is empty when the block ended before the watching thread saw it.
    ``threshold`` is the watchdog's, in seconds.
    """

    ms: float
    stack: tuple[StackFrame, ...]
    at: float  # seconds since the epoch, when the block ended
    threshold: float


def threshold_from_env() -> float | None:
    """``OPS_CENTER_LOOP_BLOCK_MS`` in seconds (default 0.1); None when it is 0 (off)."""
    raw = os.environ.get(BLOCK_ENV, "").strip()
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not ms >= 0 or ms == float("inf"):
        log.warning(
            "%s=%r is not a number of milliseconds >= 0; using %d ms",
            BLOCK_ENV,
            raw,
            DEFAULT_THRESHOLD * 1000,
        )
        return DEFAULT_THRESHOLD
    return ms / 1000 if ms > 0 else None


class LoopWatchdog:
    """Calls ``on_block(block)`` on the loop after each stall longer than ``threshold`` s.

    >>> watchdog = LoopWatchdog(lambda block: print(round(block.ms), block.stack[:1]))
    >>> watchdog.start()  # in a running loop  # doctest: +SKIP

    ``clock`` (monotonic seconds) is injectable: a test can step :meth:`beat`
    and :meth:`sample` by hand instead of starting the loop callback and
    the thread.
    """

    def __init__(
        self,
        on_block: Callable[[LoopBlock], None],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        interval: float = HEARTBEAT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.threshold = threshold
        self.interval = interval
        self._on_block = on_block
        self._clock = clock
        self._wall_clock = wall_clock
        self._loop_thread = threading.get_ident()
        self._stamp: float | None = None
        self._due = 0.0
        # (the stamp it was taken at, the stack): a sample of an older stamp is stale.
        self._sample: tuple[float, tuple[StackFrame, ...]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Start beating on the running loop and watching from a daemon thread."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopped.clear()
        self._stamp = None
        self._tick(loop)
        self._thread = threading.Thread(target=self._watch, name="ops-center-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and the thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopped.set()
            thread.join(timeout=1.0)

    def beat(self) -> None:
        """Stamp the heartbeat (on the loop); report the block a late beat ends."""
        now = self._clock()
        late = now - self._due if self._stamp is not None else 0.0
        previous = self._stamp
        self._stamp = now
        self._due = now + self.interval
        if late < self.threshold:
            return
        sample = self._sample
        stack = sample[1] if sample is not None and sample[0] == previous else ()
        self._on_block(
            LoopBlock(late * 1000, stack, at=self._wall_clock(), threshold=self.threshold)
        )

    def sample(self) -> None:
        """From another thread: take the loop thread's stack if the loop is stuck now."""
        stamp = self._stamp
        if stamp is None or self._clock() - stamp < self.threshold:
            return
        sample = self._sample
        if sample is not None and sample[0] == stamp:
            return  # this stall is sampled already
        frame = sys._current_frames().get(self._loop_thread)
        self._sample = (stamp, _summary(frame))

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.beat()
        except Exception:  # a failing report must not stop the heartbeat
            log.exception("reporting a blocked event loop failed")
        self._timer = loop.call_later(self.interval, self._tick, loop)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            self.sample()


def _summary(frame: FrameType | None) -> tuple[StackFrame, ...]:
    frames: list[StackFrame] = []
    while frame is not None and len(frames) < _MAX_FRAMES:
        code = frame.f_code
        frames.append(StackFrame(code.co_filename, code.co_qualname, frame.f_lineno))
        frame = frame.f_back
    return tuple(frames)


def blame(
    stack: tuple[StackFrame, ...], folders: Mapping[str, Path]
) -> tuple[str, StackFrame] | None:
    """The plugin (of ``{plugin_id: folder}``) whose code the stack entered first, and where.

    The outermost frame in a plugin's folder is the handler the host called
    (the frames inside it may be the plugin's helpers or the SDK).
    """
    prefixes = [
        (plugin_id, prefix)
        for plugin_id, folder in folders.items()
        for prefix in {str(folder) + os.sep, str(folder.resolve()) + os.sep}
    ]
    for frame in reversed(stack):
        for plugin_id, prefix in prefixes:
            if frame.filename.startswith(prefix):
                return plugin_id, frame
    return None


class LoopBlocks:
    """The count of one plugin's blocks of the loop and the last one, for its health."""

    def __init__(self) -> None:
        self.count = 0
        self.last_ms: int | None = None
        self.last_handler: str | None = None
        self.last_at: str | None = None

    def add(self, handler: str, block: LoopBlock) -> None:
        self.count += 1
        self.last_ms = round(block.ms)
        self.last_handler = handler
        self.last_at = datetime.fromtimestamp(block.at, UTC).isoformat()

    def as_dict(self) -> dict[str, Any]:
        """``{"count", "last_ms", "last_handler", "last_at"}``."""
        return {
            "count": self.count,
            "last_ms": self.last_ms,
            "last_handler": self.last_handler,
            "last_at": self.last_at,
        }


def warn_blocked(plugin_id: str, frame: StackFrame, block: LoopBlock) -> logging.LogRecord:
    """Log the block on the host's log (``ops_center_sdk.host.watchdog``); the record."""
    record = log.makeRecord(
        log.name,
        logging.WARNING,
        frame.filename,
        frame.line,
        "plugin %r: handler %r (%s:%d) blocked the event loop for %d ms (limit %d ms); "
        "the whole host waited. Run blocking code in a plain 'def' handler "
        "or 'await asyncio.to_thread(...)'",
        (
            plugin_id,
            frame.qualname,
            os.path.basename(frame.filename),
            frame.line,
            round(block.ms),
            round(block.threshold * 1000),
        ),
        None,
        extra={"plugin_id": plugin_id, "handler": frame.qualname},
    )
    if log.isEnabledFor(logging.WARNING):
        log.handle(record)
    return record
