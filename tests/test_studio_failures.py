"""How a failure reaches the user: one line on the page; a bug's traceback in the library's log."""

from __future__ import annotations

import logging
import os

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from core.common.log_file import log_to_library
from storage.errors import LibraryError
from studio.background import run_in_background
from studio.context import StudioSignals
from studio.failures import failure_line
from studio.job_poller import JobPoller


@pytest.fixture
def log_file(library):
    path = log_to_library(library.root)
    yield path
    for handler in [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]:
        if handler.baseFilename == str(path):
            logging.getLogger().removeHandler(handler)
            handler.close()


def logged(path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text(encoding="utf-8") if path.exists() else ""


def count_the_stars():
    raise ValueError("the sky is empty")


def test_a_bug_in_background_work_is_logged_with_its_traceback_and_shown_as_one_line(qtbot, log_file):
    shown: list[str] = []
    run_in_background(count_the_stars, shown.append, lambda exc: shown.append(failure_line("count the stars", exc)))
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)

    assert shown == [f"Could not count the stars: ValueError: the sky is empty (details in {log_file})"]
    text = logged(log_file)
    assert "studio ERROR: Could not count the stars" in text
    assert "Traceback (most recent call last)" in text and "in count_the_stars" in text


def test_a_refusal_is_shown_as_it_is_and_not_logged(qtbot, log_file):
    def refuse():
        raise LibraryError("no character named 'Nobody' in project 'Demo'")

    shown: list[str] = []
    run_in_background(refuse, shown.append, lambda exc: shown.append(failure_line("show the character", exc)))
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)

    assert shown == ["no character named 'Nobody' in project 'Demo'"]
    assert "Traceback" not in logged(log_file)


class BrokenQueue:
    def list(self, **_filters):
        raise RuntimeError("the queue table is gone")


def test_the_poller_shows_a_failed_read_as_one_line_and_logs_it_once(qtbot, log_file):
    poller = JobPoller(BrokenQueue(), StudioSignals(), interval_ms=20)
    errors: list[str] = []
    poller.error_changed.connect(errors.append)
    poller.start()
    qtbot.waitUntil(lambda: poller._polls >= 5, timeout=5000)
    poller.stop()

    assert errors == [f"Could not read the job queue: RuntimeError: the queue table is gone (details in {log_file})"]
    assert logged(log_file).count("Traceback") == 1  # a library that stays broken is not logged at every poll
