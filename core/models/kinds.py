"""The kinds and families of model the app knows, and how messages name them.

Plain data, imported by the light modules (the model catalog, request checks, the GUI) and by
core.models.inspection, which tells them apart in a file.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("checkpoint", "lora", "controlnet", "t2i-adapter", "ip-adapter", "photomaker", "image-encoder", "pose-estimator", "face-models")
FAMILIES = ("sd15", "sdxl")
FAMILY_NAMES = {"sd15": "SD 1.5", "sdxl": "SDXL"}
KIND_NAMES = {
    "checkpoint": "checkpoint", "lora": "LoRA", "controlnet": "ControlNet", "t2i-adapter": "T2I-Adapter",
    "ip-adapter": "IP-Adapter", "photomaker": "PhotoMaker", "image-encoder": "image encoder", "pose-estimator": "pose estimator",
    "face-models": "face-models folder",
}  # fmt: skip
CONTROL_TYPES = (
    "openpose", "depth", "canny", "lineart", "scribble", "softedge",
    "normal", "seg", "tile", "mlsd", "ip2p", "inpaint",
    "instantid",  # InstantID's IdentityNet: fed face keypoints and face tokens
    "sketch", "color",  # T2I-Adapter's: a 1-channel sketch, a colour palette downscaled to blocks
)  # fmt: skip
# Kinds fed a control image, each with its control type: a request's control entry names either.
CONTROL_KINDS = ("controlnet", "t2i-adapter")


# What a family renders best out of the box; a checkpoint's own size (core.models.inspection's
# native_size, read from its VAE config or modelspec metadata) wins over the family's.
@dataclass(frozen=True)
class RenderDefaults:
    width: int
    height: int
    steps: int = 30
    cfg: float = 7.0
    sampler: str = "DPM++ 2M Karras"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


FAMILY_DEFAULTS = {"sd15": RenderDefaults(512, 512), "sdxl": RenderDefaults(1024, 1024, cfg=6.0)}
UNKNOWN_FAMILY_DEFAULTS = FAMILY_DEFAULTS["sd15"]


def article(words: str) -> str:
    return "an" if words[:1] in "AEIOSaeiou" else "a"  # "an SDXL LoRA", "an IP-Adapter", "a LoRA"


def a_kind(kind: str) -> str:
    """'a LoRA', 'an IP-Adapter': a kind as a message says it."""
    return f"{article(KIND_NAMES[kind])} {KIND_NAMES[kind]}"
