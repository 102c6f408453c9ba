"""Progress of long work (training, scoring): a log line at least every 30 seconds, and a callback.

Logged on the "moovitamix.recommender" logger: the sub-step, what is done out of what, elapsed
and remaining time. The optional callback receives a short description ("scoring: 400,000/
1,000,000 users") at each sub-step change and each report, for a caller's own record (the
nightly job's run ledger).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LOG = logging.getLogger("moovitamix.recommender")
REPORT_EVERY_SECONDS = 30.0


class Progress:
    """Reports a sequence of sub-steps, each optionally counted (`advance`) towards a total."""

    def __init__(
        self,
        callback: Callable[[str], None] | None = None,
        every_seconds: float = REPORT_EVERY_SECONDS,
    ) -> None:
        self.callback = callback
        self.every_seconds = every_seconds
        self.started = time.monotonic()
        self._step = ""
        self._unit = ""
        self._total = 0
        self._done = 0
        self._step_started = self.started
        self._reported = self.started

    def step(self, name: str, total: int = 0, unit: str = "") -> None:
        """A new sub-step begins; with a total, `advance` counts towards it."""
        self._step, self._total, self._unit, self._done = name, total, unit, 0
        self._step_started = self._reported = time.monotonic()
        self._report(f"{name}: {total:,} {unit}" if total else name)

    def advance(self, done: int) -> None:
        """`done` more units of the current step; reports when the interval has passed."""
        self._done += done
        now = time.monotonic()
        if now - self._reported >= self.every_seconds:
            self._reported = now
            self._report(self.describe(now))

    def describe(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self._step_started
        text = f"{self._step}: {self._done:,}/{self._total:,} {self._unit}, {elapsed:.0f} s elapsed"
        if 0 < self._done < self._total:
            text += f", ~{elapsed / self._done * (self._total - self._done):.0f} s remaining"
        return text

    def _report(self, text: str) -> None:
        LOG.info("%s", text)
        if self.callback is not None:
            self.callback(text)
