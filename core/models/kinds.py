"""The kinds and families of model the app knows, and how messages name them.

Plain data, imported by the light modules (the model catalog, request checks, the GUI) and by
core.models.inspection, which tells them apart in a file.
"""

from __future__ import annotations

KINDS = ("checkpoint", "lora", "controlnet", "ip-adapter", "image-encoder", "pose-estimator", "face-models")
FAMILIES = ("sd15", "sdxl")
FAMILY_NAMES = {"sd15": "SD 1.5", "sdxl": "SDXL"}
KIND_NAMES = {
    "checkpoint": "checkpoint", "lora": "LoRA", "controlnet": "ControlNet",
    "ip-adapter": "IP-Adapter", "image-encoder": "image encoder", "pose-estimator": "pose estimator",
    "face-models": "face-models folder",
}  # fmt: skip
CONTROL_TYPES = (
    "openpose", "depth", "canny", "lineart", "scribble", "softedge",
    "normal", "seg", "tile", "mlsd", "ip2p", "inpaint",
    "instantid",  # InstantID's IdentityNet: fed face keypoints and face tokens
)  # fmt: skip


def article(words: str) -> str:
    return "an" if words[:1] in "AEIOSaeiou" else "a"  # "an SDXL LoRA", "an IP-Adapter", "a LoRA"


def a_kind(kind: str) -> str:
    """'a LoRA', 'an IP-Adapter': a kind as a message says it."""
    return f"{article(KIND_NAMES[kind])} {KIND_NAMES[kind]}"
