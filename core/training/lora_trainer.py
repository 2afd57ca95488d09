"""The training loop: a LoRA (or, for DreamBooth, optionally the whole UNet) learns a character.

One step: a batch from the data order; its latents (cached once per job, or encoded now), noise
and timesteps from the job's own seeded CPU generator, the noisy latents, the UNet's prediction,
the MSE against the target the scheduler's prediction_type asks for (the noise for epsilon, the
velocity for v-prediction), and with prior preservation the same over a batch of class images,
weighted. AdamW (bitsandbytes' 8-bit AdamW on CUDA when it is installed), a diffusers learning-rate
schedule, gradient clipping at 1.0, autocast in bf16/fp16 on CUDA with fp32 trainable weights,
and gradient checkpointing when asked.

Everything the next step depends on is in `checkpoint_state()`: trainable weights, optimizer,
LR scheduler, grad scaler, RNG states, the data cursors. Restoring it gives bit-for-bit the
steps an uninterrupted run takes (on the same device and library versions).
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from core.training.checkpoints import CheckpointError, capture_rng, load_checkpoint, restore_rng
from core.training.conditioning import CaptionEncoder, TextConditioning, sdxl_time_ids
from core.training.config import ConfigError, TrainingConfig
from core.training.dataset import DataCursor, DataOrder, PreparedImage, TrainingImage, load_image

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
CACHE_DIRNAME = "cache"
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class Precision:
    weight_dtype: torch.dtype  # frozen weights
    autocast_dtype: torch.dtype | None  # None: plain fp32
    grad_scaler: bool  # fp16 autocast needs loss scaling
    name: str  # kohya's ss_mixed_precision: no / fp16 / bf16


def choose_precision(device: str, precision: str) -> Precision:
    """Mixed precision on CUDA only: bf16 where the GPU has it, else fp16. CPU and MPS train in fp32."""
    if not device.startswith("cuda"):
        if precision in ("fp16", "bf16"):
            raise ConfigError(f"--precision {precision} trains on CUDA GPUs only; on {device} training runs in fp32 (--precision auto)")
        return Precision(torch.float32, None, False, "no")
    if precision == "fp32":
        return Precision(torch.float32, None, False, "no")
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return Precision(dtype, dtype, dtype == torch.float16, precision)


@dataclass
class EncodedSet:
    """A set of training images ready for the UNet: latents or pixels, and caption conditioning."""

    images: list[TrainingImage]
    captions: list[str]
    caption_index: list[int]
    sizes: list[tuple[tuple[int, int], tuple[int, int]]]  # (original size, crop top-left) per image
    latents: list[torch.Tensor] | None = None  # scaled, (4, h, w), fp32 on CPU
    flipped: list[torch.Tensor] | None = None
    pixels: list[PreparedImage] | None = None  # when latents are not cached
    text: list[TextConditioning] | None = None  # per caption, when the text encoders are frozen
    tokens: list[list[torch.Tensor]] | None = None  # per caption, when they train
    cache_hit: bool = False

    @property
    def buckets(self) -> tuple[tuple[int, int], ...]:
        return tuple(i.bucket for i in self.images)


class LoraTrainer:
    def __init__(self, config: TrainingConfig, pipe, family: str, device: str, precision: Precision):
        from diffusers import DDPMScheduler

        self.config = config
        self.pipe = pipe
        self.family = family
        self.device = torch.device(device)
        self.precision = precision
        self.unet = pipe.unet
        self.vae = pipe.vae
        self.text_encoders = {"text_encoder": pipe.text_encoder}
        if family == "sdxl":
            self.text_encoders["text_encoder_2"] = pipe.text_encoder_2
        self.captions = CaptionEncoder(pipe, family)
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.shift_factor = getattr(self.vae.config, "shift_factor", None) or 0.0
        self.generator = torch.Generator("cpu").manual_seed(config.seed)
        self.step = 0
        self.instances: EncodedSet | None = None
        self.classes: EncodedSet | None = None
        self.cursor: DataCursor | None = None
        self.class_cursor: DataCursor | None = None
        self._set_up_weights()
        self.optimizer, self.optimizer_name = self._make_optimizer()
        self.lr_scheduler = self._make_lr_scheduler()
        self.scaler = torch.amp.GradScaler("cuda") if precision.grad_scaler else None

    # -- model set-up ---------------------------------------------------------------------
    def _set_up_weights(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        config = self.config
        torch.manual_seed(config.seed)  # LoRA initialisation
        self.vae.requires_grad_(False)
        self.vae.to(self.device, torch.float32)  # SDXL's VAE overflows in fp16; encoding in fp32 is cheap
        for encoder in self.text_encoders.values():
            encoder.requires_grad_(False)
            encoder.eval()
        self.unet.requires_grad_(False)
        if config.full_unet:
            self.unet.to(self.device, torch.float32)
            self.unet.requires_grad_(True)
        else:
            lora: dict[str, Any] = dict(r=config.rank, lora_alpha=config.network_alpha, init_lora_weights="gaussian")
            self.unet.add_adapter(LoraConfig(**lora, target_modules=UNET_TARGETS))
            if config.train_text_encoder:
                for encoder in self.text_encoders.values():
                    # peft itself, not transformers' `add_adapter`: that one gates on its own idea of
                    # the peft version and has refused the newest peft release before.
                    inject_adapter_in_model(LoraConfig(**lora, target_modules=TEXT_TARGETS), encoder, adapter_name="default")
                    encoder.train()
        self.unet.train()
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if config.train_text_encoder:
                for encoder in self.text_encoders.values():
                    encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.trainable: dict[str, torch.nn.Parameter] = {}
        for component, module in {"unet": self.unet, **self.text_encoders}.items():
            for name, parameter in module.named_parameters():
                if parameter.requires_grad:
                    parameter.data = parameter.data.float()  # fp32 master weights under autocast
                    self.trainable[f"{component}.{name}"] = parameter
        if not self.trainable:
            raise ConfigError("nothing to train: the model has no attention projections to put a LoRA on")

    def _make_optimizer(self):
        config = self.config
        unet_params = [p for n, p in self.trainable.items() if n.startswith("unet.")]
        text_params = [p for n, p in self.trainable.items() if not n.startswith("unet.")]
        groups = [{"params": unet_params, "lr": config.lr}]
        if text_params:
            groups.append({"params": text_params, "lr": config.text_encoder_lr or config.lr / 2})
        wants_8bit = config.optimizer == "adamw8bit" or (config.optimizer == "auto" and self.device.type == "cuda")
        if wants_8bit:
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                bitsandbytes = None
            if bitsandbytes is not None and self.device.type == "cuda":
                return bitsandbytes.optim.AdamW8bit(groups, lr=config.lr, weight_decay=1e-2), "AdamW8bit"
            if config.optimizer == "adamw8bit":
                raise ConfigError("--optimizer adamw8bit needs the bitsandbytes package and a CUDA GPU; use --optimizer adamw")
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-2), "AdamW"

    def _make_lr_scheduler(self):
        from diffusers.optimization import get_scheduler

        return get_scheduler(
            self.config.lr_scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=self.config.warmup_steps,
            num_training_steps=self.config.steps,
        )

    # -- data -----------------------------------------------------------------------------
    def prepare_data(
        self,
        instance_images: list[TrainingImage],
        class_images: list[TrainingImage],
        work_dir: Path,
        fingerprint: dict[str, Any],
    ) -> None:
        """Encodes the images and captions once (or reads them back from the job's cache) and
        sets up the data order."""
        cache = work_dir / CACHE_DIRNAME
        self.instances = self._encode_set("instance", instance_images, cache, fingerprint)
        order = DataOrder(self.instances.buckets, self.config.batch, self.config.seed, self.config.flip, stream=0)
        self.cursor = DataCursor(order)
        if class_images:
            self.classes = self._encode_set("class", class_images, cache, fingerprint)
            class_order = DataOrder(self.classes.buckets, self.config.batch, self.config.seed, self.config.flip, stream=1)
            self.class_cursor = DataCursor(class_order)

    def _encode_set(self, name: str, images: list[TrainingImage], cache: Path, fingerprint: dict[str, Any]) -> EncodedSet:
        captions = sorted({i.caption for i in images})
        encoded = EncodedSet(images, captions, [captions.index(i.caption) for i in images], sizes=[])
        cache_latents = self.config.cache_latents
        cache_text = not self.config.train_text_encoder
        key = json.dumps(
            {**fingerprint, "set": name, "images": [i.identity() for i in images], "latents": cache_latents, "text": cache_text},
            sort_keys=True,
        )
        path = cache / f"{name}.safetensors"
        if (cache_latents or cache_text) and self._read_cache(path, key, encoded):
            return encoded
        pixels = [load_image(image) for image in images]
        encoded.sizes = [(p.original_size, p.crop_top_left) for p in pixels]
        with torch.no_grad():
            if cache_latents:
                encoded.latents = [self.encode_pixels(p.pixels[None])[0].cpu() for p in pixels]
                if self.config.flip:
                    encoded.flipped = [self.encode_pixels(p.pixels.flip(-1)[None])[0].cpu() for p in pixels]
            else:
                encoded.pixels = pixels
            if cache_text:
                encoded.text = [self._text_to_cpu(self.captions.encode_captions([c], self.device)) for c in captions]
        if not cache_text:
            encoded.tokens = [self.captions.tokenize([c]) for c in captions]
        if cache_latents or cache_text:
            self._write_cache(path, key, encoded)
        return encoded

    @staticmethod
    def _text_to_cpu(text: TextConditioning) -> TextConditioning:
        return TextConditioning(text.hidden.float().cpu(), text.pooled.float().cpu() if text.pooled is not None else None)

    def _write_cache(self, path: Path, key: str, encoded: EncodedSet) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for index, latent in enumerate(encoded.latents or []):
            tensors[f"latent.{index}"] = latent.contiguous()
        for index, latent in enumerate(encoded.flipped or []):
            tensors[f"flipped.{index}"] = latent.contiguous()
        for index, text in enumerate(encoded.text or []):
            tensors[f"text.{index}.hidden"] = text.hidden.contiguous()
            if text.pooled is not None:
                tensors[f"text.{index}.pooled"] = text.pooled.contiguous()
        if not tensors:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(temp), metadata={"key": key, "sizes": json.dumps(encoded.sizes)})
        os.replace(temp, path)

    def _read_cache(self, path: Path, key: str, encoded: EncodedSet) -> bool:
        if not path.exists():
            return False
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                if metadata.get("key") != key:
                    return False
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (OSError, ValueError, RuntimeError):
            return False
        count = len(encoded.images)
        encoded.sizes = [(tuple(o), tuple(c)) for o, c in json.loads(metadata["sizes"])]
        if self.config.cache_latents:
            encoded.latents = [tensors[f"latent.{i}"] for i in range(count)]
            if self.config.flip:
                encoded.flipped = [tensors[f"flipped.{i}"] for i in range(count)]
        else:
            encoded.pixels = [load_image(image) for image in encoded.images]
        if self.config.train_text_encoder:
            encoded.tokens = [self.captions.tokenize([c]) for c in encoded.captions]
        else:
            encoded.text = [
                TextConditioning(tensors[f"text.{i}.hidden"], tensors.get(f"text.{i}.pooled")) for i in range(len(encoded.captions))
            ]
        encoded.cache_hit = True
        return True

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> scaled latents. The distribution's mean: a deterministic
        encoding, the same whether cached once or computed at every step."""
        latents = self.vae.encode(pixels.to(self.device, torch.float32)).latent_dist.mode()
        return (latents - self.shift_factor) * self.scaling_factor

    # -- one step -------------------------------------------------------------------------
    def _batch(self, encoded: EncodedSet, batch: list[tuple[int, bool]]):
        indices = [i for i, _ in batch]
        if encoded.latents is not None:
            # Flipped latents exist only when flipping is on, and only then is `flip` ever true.
            cached, flipped = encoded.latents, encoded.flipped or []
            latents = torch.stack([flipped[i] if flip else cached[i] for i, flip in batch]).to(self.device)
        else:
            assert encoded.pixels is not None  # kept whenever latents are not cached
            images = encoded.pixels
            pixels = torch.stack([images[i].pixels.flip(-1) if flip else images[i].pixels for i, flip in batch])
            with torch.no_grad():
                latents = self.encode_pixels(pixels)
        captions = [encoded.caption_index[i] for i in indices]
        if encoded.text is not None:
            conditioning = [encoded.text[c] for c in captions]
            pooled = None
            if encoded.text[0].pooled is not None:  # SDXL: every caption has its pooled embedding
                pooled = torch.cat([t.pooled for t in conditioning if t.pooled is not None])
            text = TextConditioning(torch.cat([t.hidden for t in conditioning]), pooled).to(self.device)
        else:
            assert encoded.tokens is not None  # kept whenever the text encoders train
            tokens = [torch.cat([encoded.tokens[c][k] for c in captions]) for k in range(len(encoded.tokens[0]))]
            text = self.captions.encode(tokens, self.device)
        time_ids = None
        if self.family == "sdxl":
            height, width = latents.shape[-2] * 8, latents.shape[-1] * 8
            time_ids = torch.stack([sdxl_time_ids(*encoded.sizes[i], (height, width)) for i in indices]).to(self.device)
        return latents, text, time_ids

    def _losses(self, latents: torch.Tensor, text: TextConditioning, time_ids: torch.Tensor | None) -> torch.Tensor:
        """Per-example MSE of the UNet's prediction."""
        noise = torch.randn(latents.shape, generator=self.generator).to(self.device)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=self.generator)
        timesteps = timesteps.to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        elif self.prediction_type == "sample":
            target = latents
        else:
            raise ConfigError(f"the base model's scheduler predicts '{self.prediction_type}', which training does not support")
        added = None
        if time_ids is not None:
            added = {"text_embeds": text.pooled, "time_ids": time_ids}
        prediction = self.unet(noisy, timesteps, text.hidden, added_cond_kwargs=added).sample
        return F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))

    def train_step(self) -> float:
        """One optimizer step; returns its loss."""
        if self.cursor is None or self.instances is None:
            raise RuntimeError("prepare_data first")
        autocast = (
            torch.autocast(self.device.type, dtype=self.precision.autocast_dtype)
            if self.precision.autocast_dtype is not None
            else nullcontext()
        )
        instance = self._batch(self.instances, self.cursor.next_batch())
        with autocast:
            loss = self._losses(*instance).mean()
            if self.class_cursor is not None:
                assert self.classes is not None  # set with its cursor
                prior = self._batch(self.classes, self.class_cursor.next_batch())
                loss = loss + self.config.prior_weight * self._losses(*prior).mean()
        parameters = list(self.trainable.values())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return float(loss.detach())

    # -- checkpoints ----------------------------------------------------------------------
    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return {name: parameter.detach() for name, parameter in self.trainable.items()}

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": capture_rng(self.generator),
            "data": self.cursor.state() if self.cursor else None,
            "class_data": self.class_cursor.state() if self.class_cursor else None,
        }

    def restore(self, path: Path) -> int:
        step, weights, state = load_checkpoint(path)
        if set(weights) != set(self.trainable):
            missing = sorted(set(self.trainable) - set(weights))[:3]
            raise CheckpointError(
                f"checkpoint {path.name} does not match this job's model (missing e.g. {', '.join(missing) or '-'}); "
                "was the job's rank, text-encoder or full-UNet option changed?"
            )
        with torch.no_grad():
            for name, parameter in self.trainable.items():
                parameter.copy_(weights[name].to(parameter.device, parameter.dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"], self.generator)
        if state.get("data") and self.cursor is not None:
            self.cursor.restore(state["data"])
        if state.get("class_data") and self.class_cursor is not None:
            self.class_cursor.restore(state["class_data"])
        self.step = step
        return step

    # -- results --------------------------------------------------------------------------
    def lora_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """peft LoRA state dicts per component (`<module>.lora_A.weight` ...)."""
        from peft.utils import get_peft_model_state_dict

        states = {"unet": get_peft_model_state_dict(self.unet)}
        if self.config.train_text_encoder:
            for component, encoder in self.text_encoders.items():
                states[component] = get_peft_model_state_dict(encoder)
        return states

    def release(self) -> None:
        """Drops the references to the models so their memory can go."""
        self.optimizer = None
        self.lr_scheduler = None
        self.trainable = {}
        self.instances = self.classes = None
        self.pipe = self.unet = self.vae = None
        self.text_encoders = {}
