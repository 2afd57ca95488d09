"""A hook for measuring launch time (bench/gui.py): with CHARACTER_STUDIO_REPORT_SHOWN=PATH set,
the main window writes, at its first paint, a JSON file to PATH and closes itself:

    {"painted_at": <time.time() of the first paint>, "heavy_modules": ["torch", ...]}

`heavy_modules` lists which of torch, diffusers, transformers and cv2 the GUI process had imported
by then (the goal: none; only the worker imports them). Without the variable nothing happens.
"""

from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

REPORT_ENV_VAR = "CHARACTER_STUDIO_REPORT_SHOWN"
HEAVY_MODULES = ("torch", "diffusers", "transformers", "cv2")


def report_first_paint(window: QWidget) -> None:
    """Called from the window's paintEvent; acts once, and only when the variable is set."""
    path = os.environ.get(REPORT_ENV_VAR)
    if not path or window.property("launchReported"):
        return
    window.setProperty("launchReported", True)
    report = {"painted_at": time.time(), "heavy_modules": [name for name in HEAVY_MODULES if name in sys.modules]}
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        json.dump(report, handle)
    os.replace(temporary, path)
    # After this paint has finished; close() runs the pages' shutdown hooks like a user's quit.
    QTimer.singleShot(0, window.close)
