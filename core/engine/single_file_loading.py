"""Single files loaded offline with the config their own keys call for.

diffusers' from_single_file, given no config, looks one up on the Hugging Face hub by what it
guesses the file is; offline that fails ("lllyasviel/control_v11p_sd15_canny does not appear to
have a file named config.json"), and for SDXL ControlNets it cannot tell mid from small. So every
config comes from resources/models/ (chosen by core.models.layouts) or from the user's --config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.models import layouts as model_layouts
from core.models.weights_files import TensorIndex, read_tensor_index
from storage.errors import LibraryError


class SingleFileError(LibraryError):
    """A single file that cannot be loaded; the message names it and says why."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # Only reached for a file the user registered with --allow-pickle; weights_only refuses code.
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    return {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}


def _index(state: dict[str, torch.Tensor]) -> TensorIndex:
    return TensorIndex({k: tuple(v.shape) for k, v in state.items()}, {}, {}, {})


# -- ControlNets ------------------------------------------------------------------------------
def controlnet_from_file(path: Path, config_dir: Path | None, dtype: torch.dtype):
    """A ControlNetModel from a single file in any of the three layouts."""
    from diffusers import ControlNetModel

    from resources import controlnet_config_dir

    state = read_state_dict(path)
    index = _index(state)
    layout = model_layouts.controlnet_layout(index)
    if layout is None:
        raise SingleFileError(f"{path}: not a ControlNet (no control_model.*, input_hint_block.* or controlnet_cond_embedding.* keys)")
    if config_dir is None:
        signature = model_layouts.controlnet_signature(model_layouts.controlnet_shapes(index, layout), layout)
        variant = model_layouts.controlnet_variant(signature)
        if variant is None:
            raise SingleFileError(model_layouts.unmatched_controlnet(path, model_layouts.describe_signature(signature)))
        config_dir = controlnet_config_dir(variant)
    if layout != "diffusers":
        state = ldm_controlnet_to_diffusers(state, ControlNetModel.load_config(str(config_dir), local_files_only=True))
    # No torch_dtype here: casting a model with unloaded (meta) tensors fails without saying which.
    model = ControlNetModel.from_single_file(state, config=str(config_dir), local_files_only=True)
    refuse_unloaded(path, model, f"its config {config_dir}")
    return model.to(dtype)


def union_controlnet_from_file(path: Path, config_dir: Path | None, dtype: torch.dtype):
    """A ControlNetUnionModel from one file in xinsir's (= diffusers') layout. diffusers has no
    from_single_file mapping for it: the model is built empty from the config (the shipped SDXL
    union one, or the user's --config) with the sizes the file's shapes say, then given the file's
    tensors, every one of them (strict: a missing or extra tensor is one line, not a silent drop)."""
    from diffusers import ControlNetUnionModel

    from core.models import controlnet_union_layouts as union_layouts

    state = read_state_dict(path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    folder = config_dir or union_layouts.union_config_dir()
    try:
        config = union_layouts.union_config(dict(ControlNetUnionModel.load_config(str(folder), local_files_only=True)), shapes)
    except ValueError as exc:
        raise SingleFileError(f"{path}: {exc}") from None
    with torch.device("meta"):
        model = ControlNetUnionModel.from_config(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise SingleFileError(
            f"{path}: does not fit the union ControlNet config {folder}: {first[1].strip() if len(first) > 1 else exc}"
        ) from None
    refuse_unloaded(path, model, f"its config {folder}")
    return model.to(dtype).eval()


def ldm_controlnet_to_diffusers(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """diffusers' own converter, plus SDXL's added embedding (label_emb), which it has no names for."""
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    prefix = model_layouts.LDM_CONTROLNET_PREFIX
    plain = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)} or state
    converted = convert_controlnet_checkpoint(plain, config)
    for old, new in model_layouts.LDM_ADD_EMBEDDING.items():
        converted.update({new + k.removeprefix(old): v for k, v in plain.items() if k.startswith(old)})
    # The converter fills absent tensors with None; left out, they show up as unloaded below.
    return {k: v for k, v in converted.items() if v is not None}


def refuse_unloaded(path: Path, model: torch.nn.Module, config: str) -> None:
    """A tensor the file lacks stays on the meta device; say so instead of failing mid-render."""
    missing = [name for name, p in model.named_parameters() if p.is_meta]
    if missing:
        raise SingleFileError(
            f"{path}: {len(missing)} of the model's tensors are missing from the file (first: {missing[0]}); it does not fit {config}"
        )


# -- checkpoints ------------------------------------------------------------------------------
def checkpoint_variant(path: Path) -> dict[str, Any]:
    """model_layouts.checkpoint_variant of a registered single-file checkpoint (its header only)."""
    index = read_tensor_index(path, allow_pickle=True)
    conv_in = index.shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    return model_layouts.checkpoint_variant(index, conv_in[1] if conv_in and len(conv_in) == 4 else None)


def inpainting_unet(path: Path, config_dir: Path, dtype: torch.dtype):
    """The 9-channel UNet of an inpainting checkpoint: the family's UNet config with 9 inputs
    (the image latents, the mask and the masked image's latents), as the inpainting releases are."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_single_file(
        str(path), config=str(config_dir), subfolder="unet", in_channels=9, local_files_only=True, torch_dtype=dtype
    )


def scheduler_overrides(variant: dict[str, Any]) -> dict[str, Any]:
    """What a v-prediction (and zero-terminal-SNR) checkpoint changes in its family's scheduler.
    Zero terminal SNR needs the rescaled betas and trailing timesteps to reach the pure-noise step
    it was trained to start from (Lin et al., "Common Diffusion Noise Schedules ... are Flawed")."""
    overrides: dict[str, Any] = {}
    if variant.get("prediction_type") == "v_prediction":
        overrides["prediction_type"] = "v_prediction"
    if variant.get("zero_terminal_snr"):
        overrides.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    return overrides
