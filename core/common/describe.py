"""How durations, progress and time windows read, the same in the CLI, the studio and job messages."""

from __future__ import annotations


def duration(seconds: float | None, missing: str = "") -> str:
    """ "45s", "2m05s", "1h05m" (hours drop the seconds: an ETA that long is a guess to the minute)."""
    if seconds is None:
        return missing
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def progress(step: int, total: int | None, missing: str = "") -> str:
    """ "12/40", or the bare step when the total is not known yet."""
    if total:
        return f"{step}/{total}"
    return str(step) if step else missing


def window(not_before: str | None, not_after: str | None, missing: str = "") -> str:
    """A job's HH:MM run window: "22:00–07:00", "from 22:00", "until 07:30"."""
    if not_before and not_after:
        return f"{not_before}–{not_after}"
    if not_before:
        return f"from {not_before}"
    if not_after:
        return f"until {not_after}"
    return missing
