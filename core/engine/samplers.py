"""Sampler names as A1111/ComfyUI users know them, mapped to diffusers schedulers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)


@dataclass(frozen=True)
class SamplerSpec:
    scheduler: type[Any]  # a diffusers scheduler class: built with `from_config`
    options: dict[str, Any] = field(default_factory=dict)


SAMPLERS: dict[str, SamplerSpec] = {
    "DPM++ 2M Karras": SamplerSpec(DPMSolverMultistepScheduler, {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}),
    "DPM++ 2M": SamplerSpec(DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "Euler a": SamplerSpec(EulerAncestralDiscreteScheduler),
    "Euler": SamplerSpec(EulerDiscreteScheduler),
    "Heun": SamplerSpec(HeunDiscreteScheduler),
    "LMS": SamplerSpec(LMSDiscreteScheduler),
    "DDIM": SamplerSpec(DDIMScheduler),
    "PNDM": SamplerSpec(PNDMScheduler),
    "UniPC": SamplerSpec(UniPCMultistepScheduler),
}


class UnknownSampler(ValueError):
    pass


def canonical_sampler(name: str) -> str:
    """Accepts any capitalisation and `_`/`-` for spaces: `dpm++_2m_karras`, `euler-a`..."""
    wanted = name.lower().replace("_", " ").replace("-", " ")
    for known in SAMPLERS:
        if known.lower() == wanted:
            return known
    raise UnknownSampler(f"unknown sampler '{name}'; use one of: {', '.join(SAMPLERS)}")


def make_scheduler(name: str, base_config: dict[str, Any]):
    """A scheduler for `name` built on the checkpoint's own scheduler config (its betas,
    prediction type and timestep spacing stay the checkpoint's)."""
    spec = SAMPLERS[canonical_sampler(name)]
    return spec.scheduler.from_config(base_config, **spec.options)


# Lin et al. ("Common Diffusion Noise Schedules and Sample Steps are Flawed") rescale the guided
# prediction by 0.7 for zero-terminal-SNR models, as NoobAI-XL v-pred's authors recommend: without
# it, CFG over-exposes the images of such a model.
ZERO_SNR_GUIDANCE_RESCALE = 0.7


def guidance_rescale_for(pipe, scheduler_config: dict[str, Any]) -> dict[str, float]:
    """{"guidance_rescale": 0.7} for a zero-terminal-SNR model on a pipeline that takes it."""
    import inspect

    if not scheduler_config.get("rescale_betas_zero_snr"):
        return {}
    if "guidance_rescale" not in inspect.signature(pipe.__call__).parameters:
        return {}
    return {"guidance_rescale": ZERO_SNR_GUIDANCE_RESCALE}
