"""The process environment every entry point sets first: offline, quiet, no telemetry.

Set before diffusers or transformers are imported, since both read these at import time.
"""

from __future__ import annotations

import os

ENVIRONMENT = {
    # Offline always: nothing may reach for a model hub, whatever a library defaults to.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # The app reports progress its own way; library bars and chatter would garble it.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def configure_environment() -> None:
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
