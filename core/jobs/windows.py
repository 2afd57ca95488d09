"""Schedule windows: the hours of the day a job may run, as "HH:MM" local wall-clock times.

- `--not-before 01:00 --not-after 07:30`: every day from 01:00 to 07:30. A window may cross
  midnight (`22:00`-`06:00`). A job runs only inside it; a running job that reaches the end
  checkpoints, goes back to the queue and continues when the window next opens.
- `--not-before 01:00` alone: start at the first 01:00 after the job was queued, then run
  until done (there is no end to stop at).
- `--not-after 07:30` alone: every day until 07:30 (the window opens at midnight).

Times are local (what the user's clock shows); the library's timestamps are UTC and are
converted here. Light module: no torch, no Qt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from storage.errors import LibraryError

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class WindowError(LibraryError):
    """A time or window the queue cannot use."""


def parse_hhmm(text: str, what: str = "time") -> time:
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise WindowError(f"{what} must be a 24-hour time like 01:00 or 07:30, got '{text}'")
    return time(int(match.group(1)), int(match.group(2)))


def format_hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def local_from_utc(value: datetime) -> datetime:
    """A naive UTC timestamp (as the library stores them) as naive local time."""
    return value.replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)


def local_now() -> datetime:
    return datetime.now()


def _at(day: datetime, moment: time) -> datetime:
    return datetime.combine(day.date(), moment)


@dataclass(frozen=True)
class Window:
    not_before: time | None = None
    not_after: time | None = None

    @classmethod
    def of(cls, not_before: str | None, not_after: str | None) -> Window:
        start = parse_hhmm(not_before, "--not-before") if not_before else None
        end = parse_hhmm(not_after, "--not-after") if not_after else None
        if start is not None and start == end:
            raise WindowError(f"--not-before and --not-after are both {format_hhmm(start)}: that window never opens")
        return cls(start, end)

    @property
    def always(self) -> bool:
        return self.not_before is None and self.not_after is None

    @property
    def daily(self) -> bool:
        """A window that opens and closes every day (it has an end)."""
        return self.not_after is not None

    def is_open(self, now: datetime, queued_at: datetime | None = None) -> bool:
        """Whether a job may run at local time `now`; `queued_at` (local) matters only for a
        lone not-before, which waits for the first such time after the job was queued."""
        start, end, clock = self.not_before, self.not_after, now.time()
        if start is None and end is None:
            return True
        if end is None:
            assert start is not None  # both None returned above
            if queued_at is None:
                return clock >= start
            return now >= self._first_start_after(queued_at)
        if start is None:
            return clock < end
        if start < end:
            return start <= clock < end
        return clock >= start or clock < end  # across midnight

    def must_stop(self, now: datetime) -> bool:
        """Whether a running job has reached its window's end and must checkpoint and wait."""
        return self.not_after is not None and not self.is_open(now)

    def next_open(self, now: datetime, queued_at: datetime | None = None) -> datetime:
        """When the job may next run: `now` when the window is open."""
        if self.is_open(now, queued_at):
            return now
        if self.not_after is None:
            return self._first_start_after(queued_at or now)
        opens = self.not_before or time(0, 0)
        candidate = _at(now, opens)
        return candidate if candidate > now else candidate + timedelta(days=1)

    def _first_start_after(self, moment: datetime) -> datetime:
        # Only asked of a lone not-before: a window with neither bound is always open.
        assert self.not_before is not None, "a window without a start has no first start"
        candidate = _at(moment, self.not_before)
        return candidate if candidate >= moment else candidate + timedelta(days=1)

    def describe(self) -> str:
        if self.always:
            return "any time"
        if self.not_after is None:
            assert self.not_before is not None  # `always` covers neither bound
            return f"from the next {format_hhmm(self.not_before)}"
        return f"{format_hhmm(self.not_before or time(0, 0))}-{format_hhmm(self.not_after)} daily"
