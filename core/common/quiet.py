"""Keeps diffusers, transformers and the hub quiet: the app reports progress its own way."""

from __future__ import annotations

import warnings

from core.common.offline import configure_environment


def quiet_libraries() -> None:
    configure_environment()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    # Without torchvision transformers falls back to PIL image processors and says so each time.
    warnings.filterwarnings("ignore", message=".*requires torchvision.*")
    # diffusers 0.42 prefers `dtype=`; `torch_dtype=` keeps older releases working.
    warnings.filterwarnings("ignore", message=".*`torch_dtype` is deprecated.*", category=FutureWarning)
    # Several LoRAs on one UNet is what the pipeline cache does on purpose.
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
