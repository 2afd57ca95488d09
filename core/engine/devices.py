"""Which device and precision to run on: CUDA (fp16/bf16), Apple MPS, or CPU (fp32)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype: torch.dtype

    @property
    def description(self) -> str:
        return f"{self.device} ({str(self.dtype).removeprefix('torch.')})"


class DeviceError(ValueError):
    pass


def choose_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for but PyTorch sees no CUDA GPU (is the CUDA build of torch installed?)")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device 'mps' was asked for but this Mac's PyTorch has no MPS support")
    if precision not in PRECISIONS:
        raise DeviceError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    if precision == "auto":
        # fp16 halves memory on GPUs; CPUs compute it slowly or not at all, so they stay fp32.
        dtype = torch.float16 if device.startswith("cuda") or device == "mps" else torch.float32
    else:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return DeviceChoice(device, dtype)
