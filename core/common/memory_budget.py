"""How many bytes of models the worker may keep loaded: a default from the device's free memory,
or the user's `--memory-budget GB`.

The budget bounds what stays warm between jobs (bases, ControlNets, LoRA adapters), not what one
job may use: a single model bigger than the budget still loads, alone. The margin is left for
what a render needs on top of its weights (activations, the VAE decode, CUDA's own context).
Light to import (torch only inside the CUDA measurement): the CLI parses `--memory-budget` with it.
"""

from __future__ import annotations

import math
import os

GIB = 1024**3
# What a render needs beside the weights: SDXL at 1024x1024 decodes through ~3 GB without tiling.
CUDA_RESERVE_BYTES = 2 * GIB
CUDA_RESERVE_FRACTION = 0.15
# In RAM the studio, the OS and every other program live beside the worker.
RAM_KEEP_FRACTION = 0.6
MIN_BUDGET_BYTES = 256 * 1024**2
MAX_BUDGET_GB = 4096.0

OUT_OF_MEMORY_OPTIONS = "the memory options --attention-slicing, --vae-tiling or --cpu-offload"


def default_budget_bytes(device: str, cpu_offload: bool = False) -> int:
    """Measured once, when the engine starts and holds nothing, so free memory is what it may use."""
    if device.startswith("cuda") and not cpu_offload:
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        reserve = max(CUDA_RESERVE_BYTES, int(total * CUDA_RESERVE_FRACTION))
        return max(free - reserve, MIN_BUDGET_BYTES)
    # CPU, Apple MPS (unified memory) and CPU offload all keep the weights in system RAM.
    return max(int(available_ram_bytes() * RAM_KEEP_FRACTION), MIN_BUDGET_BYTES)


def available_ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def budget_from_gigabytes(value: float | str) -> int:
    """`--memory-budget 6` or `6.5` in GB (GiB, 2^30 bytes) to bytes; refuses what is not a size."""
    try:
        gigabytes = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"memory budget must be a number of GB, got '{value}'") from None
    if not math.isfinite(gigabytes) or not 0 < gigabytes <= MAX_BUDGET_GB:
        raise ValueError(f"memory budget must be more than 0 and at most {MAX_BUDGET_GB:g} GB, got '{value}'")
    return int(gigabytes * GIB)


def out_of_memory_line(device: str, doing: str) -> str:
    """The one line an out-of-memory failure gets: what ran out, while doing what, what to try."""
    what = "out of memory (RAM)" if device == "cpu" else "out of GPU memory"
    return f"{what} {doing}; try {OUT_OF_MEMORY_OPTIONS}"
