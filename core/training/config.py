"""TrainingConfig: what a training job is asked to do, as plain data that serialises to JSON.

The CLI (and later the GUI) builds one, the job queue stores it as the job's payload, the worker's
training handler reads it back. No torch here: the GUI process builds configs too.
Validation happens on the way in, with one clear line per problem, so a bad job is refused when it
is queued rather than hours later in the worker.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from storage.errors import LibraryError

CONFIG_VERSION = 1

TRAINING_KINDS = ("lora", "dreambooth")
JOB_KINDS = {"lora": "train-lora", "dreambooth": "train-dreambooth"}
OPTIMIZERS = ("auto", "adamw", "adamw8bit")  # auto: 8-bit AdamW when bitsandbytes and CUDA are there
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
SAVE_PRECISIONS = ("fp16", "fp32")
DEFAULT_RESOLUTION = {"sd15": 512, "sdxl": 1024}
RESOLUTION_STEP = 16  # the VAE halves 3 times (8) and the smallest UNets downsample once more


class ConfigError(LibraryError, ValueError):
    """A training config that cannot run as written; the message names the option and why."""


@dataclass(frozen=True)
class TrainingConfig:
    character: str
    project: str | None = None
    kind: str = "lora"  # lora | dreambooth (LoRA with prior preservation, or the full UNet)
    base: str | None = None  # a registered checkpoint; None: the default one
    steps: int = 1000
    rank: int = 16
    alpha: float | None = None  # LoRA alpha; None: the rank (scale 1)
    lr: float = 1e-4
    text_encoder_lr: float | None = None  # None: lr / 2
    batch: int = 1
    resolution: int | None = None  # None: 512 for SD1.5, 1024 for SDXL
    train_text_encoder: bool = False
    buckets: bool | None = None  # aspect-ratio buckets; None: on for SDXL, off (square crops) for SD1.5
    flip: bool = False  # random horizontal flips
    cache_latents: bool = True  # encode every image once per job instead of at every step
    # DreamBooth
    class_prompt: str | None = None
    class_images: int = 100
    prior_weight: float = 1.0
    full_unet: bool = False  # fine-tune every UNet weight instead of a LoRA (needs the memory)
    class_steps: int = 30  # denoising steps of each generated class image
    # progress
    sample_every: int = 0  # 0: samples only at the end
    sample_prompts: tuple[str, ...] = ()  # empty: made from the character's trigger word and tags
    sample_steps: int = 20
    sample_seed: int = 1234
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    # optimisation
    seed: int = 0
    optimizer: str = "auto"
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    gradient_checkpointing: bool = False
    device: str = "auto"  # auto: the worker's device
    precision: str = "auto"  # auto: bf16 where the GPU has it, else fp16; fp32 on CPU
    save_precision: str = "fp16"
    version: int = CONFIG_VERSION

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> TrainingConfig:
        if not self.character.strip():
            raise ConfigError("the character to train is missing")
        if self.kind not in TRAINING_KINDS:
            raise ConfigError(f"--kind must be one of {', '.join(TRAINING_KINDS)}, got '{self.kind}'")
        _in_range("--steps", self.steps, 1, 1_000_000)
        _in_range("--rank", self.rank, 1, 1024)
        if self.alpha is not None and not 0 < self.alpha <= 4096:
            raise ConfigError(f"--alpha must be between 0 and 4096, got {self.alpha}")
        for name, value in (("--lr", self.lr), ("--text-encoder-lr", self.text_encoder_lr)):
            if value is not None and not 0 < value <= 1:
                raise ConfigError(f"{name} must be between 0 and 1 (e.g. 1e-4), got {value}")
        _in_range("--batch", self.batch, 1, 256)
        if self.resolution is not None:
            if not 64 <= self.resolution <= 4096 or self.resolution % RESOLUTION_STEP:
                raise ConfigError(f"--resolution must be a multiple of {RESOLUTION_STEP} between 64 and 4096, got {self.resolution}")
        if self.kind == "lora":
            if self.class_prompt:
                raise ConfigError("--class-prompt is for --kind dreambooth (prior preservation); a plain LoRA has no class images")
            if self.full_unet:
                raise ConfigError("--full-unet is for --kind dreambooth; a LoRA trains adapters only")
        else:
            if not (self.class_prompt or "").strip():
                raise ConfigError('--kind dreambooth needs --class-prompt, e.g. --class-prompt "a photo of a woman"')
            _in_range("--class-images", self.class_images, 1, 10_000)
            if not 0 <= self.prior_weight <= 100:
                raise ConfigError(f"--prior-weight must be between 0 and 100, got {self.prior_weight}")
            _in_range("--class-steps", self.class_steps, 1, 500)
            if self.full_unet and self.train_text_encoder:
                raise ConfigError("--full-unet trains the UNet only; drop --text-encoder")
        _in_range("--sample-every", self.sample_every, 0, 1_000_000)
        _in_range("--sample-steps", self.sample_steps, 1, 500)
        _in_range("--checkpoint-every", self.checkpoint_every, 1, 1_000_000)
        _in_range("--keep-checkpoints", self.keep_checkpoints, 1, 1000)
        if not 0 <= self.seed < 2**32 or not 0 <= self.sample_seed < 2**32:
            raise ConfigError(f"seeds must be between 0 and {2**32 - 1}")
        if any(not p.strip() for p in self.sample_prompts):
            raise ConfigError("a sample prompt is empty")
        _one_of("--optimizer", self.optimizer, OPTIMIZERS)
        _one_of("--lr-scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _in_range("--warmup-steps", self.warmup_steps, 0, self.steps)
        _one_of("--precision", self.precision, PRECISIONS)
        _one_of("--save-precision", self.save_precision, SAVE_PRECISIONS)
        return self

    # -- derived --------------------------------------------------------------------------
    @property
    def job_kind(self) -> str:
        return JOB_KINDS[self.kind]

    @property
    def network_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else float(self.rank)

    @property
    def uses_prior(self) -> bool:
        return self.kind == "dreambooth" and self.prior_weight > 0

    @property
    def is_lora(self) -> bool:
        return not self.full_unet

    def resolution_for(self, family: str) -> int:
        return self.resolution or DEFAULT_RESOLUTION.get(family, 512)

    def buckets_for(self, family: str) -> bool:
        return self.buckets if self.buckets is not None else family == "sdxl"

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample_prompts"] = list(self.sample_prompts)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingConfig:
        if not isinstance(data, dict):
            raise ConfigError("a training config is a JSON object")
        version = data.get("version", CONFIG_VERSION)
        if version > CONFIG_VERSION:
            raise ConfigError(f"training config version {version} is newer than this app understands ({CONFIG_VERSION}); update the app")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        values["sample_prompts"] = tuple(data.get("sample_prompts") or ())
        try:
            config = cls(**values)
        except TypeError as exc:
            raise ConfigError(f"malformed training config: {exc}") from None
        return config.validate()

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> TrainingConfig:
        """From the `train` command's parsed arguments (see add_train_arguments); options the
        command did not get keep their defaults."""
        given = vars(args)
        values: dict[str, Any] = {"character": given.get("name") or given.get("character") or ""}
        for option, field_name in _CLI_FIELDS.items():
            value = given.get(option)
            if value is not None:
                values[field_name] = value
        if given.get("sample_prompt"):
            values["sample_prompts"] = tuple(given["sample_prompt"])
        for flag, field_name in (("text_encoder", "train_text_encoder"), ("flip", "flip"), ("full_unet", "full_unet"),
                                 ("gradient_checkpointing", "gradient_checkpointing")):  # fmt: skip
            if given.get(flag):
                values[field_name] = True
        if given.get("no_cache_latents"):
            values["cache_latents"] = False
        if given.get("buckets") is not None:
            values["buckets"] = given["buckets"] == "on"
        if given.get("class_prompt") and given.get("kind") is None:
            values["kind"] = "dreambooth"
        return cls(**values).validate()


# argparse destination -> field, for the options that map one to one.
_CLI_FIELDS = {
    "project": "project",
    "kind": "kind",
    "base": "base",
    "steps": "steps",
    "rank": "rank",
    "alpha": "alpha",
    "lr": "lr",
    "text_encoder_lr": "text_encoder_lr",
    "batch": "batch",
    "resolution": "resolution",
    "class_prompt": "class_prompt",
    "class_images": "class_images",
    "prior_weight": "prior_weight",
    "sample_every": "sample_every",
    "sample_steps": "sample_steps",
    "checkpoint_every": "checkpoint_every",
    "keep_checkpoints": "keep_checkpoints",
    "seed": "seed",
    "optimizer": "optimizer",
    "lr_scheduler": "lr_scheduler",
    "warmup_steps": "warmup_steps",
    "precision": "precision",
    "save_precision": "save_precision",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `train NAME` command's training options; TrainingConfig.from_cli_args reads them back.
    Defaults stay None here so the config's own defaults apply. The queue's options (--priority,
    --not-before, --not-after) are the job commands' own."""
    parser.add_argument("name", metavar="NAME", help="the character to train")
    parser.add_argument("--project", metavar="P", help="the character's project, when the name is ambiguous")
    parser.add_argument("--kind", choices=TRAINING_KINDS, help="lora (default), or dreambooth with prior preservation")
    parser.add_argument("--base", metavar="MODEL", help="the checkpoint to train on (default: the default checkpoint)")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps (default 1000)")
    parser.add_argument("--rank", type=int, metavar="R", help="LoRA rank (default 16)")
    parser.add_argument("--alpha", type=float, metavar="A", help="LoRA alpha (default: the rank)")
    parser.add_argument("--lr", type=float, metavar="LR", help="learning rate (default 1e-4)")
    parser.add_argument("--text-encoder-lr", type=float, metavar="LR", help="text encoder learning rate (default lr/2)")
    parser.add_argument("--batch", type=int, metavar="B", help="batch size (default 1)")
    parser.add_argument("--resolution", type=int, metavar="PX", help="training size (default 512 for SD1.5, 1024 for SDXL)")
    parser.add_argument("--text-encoder", action="store_true", help="train a LoRA on the text encoder(s) too")
    parser.add_argument("--buckets", choices=["on", "off"], help="aspect-ratio buckets (default: on for SDXL)")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips")
    parser.add_argument("--no-cache-latents", action="store_true", help="encode images at every step (less disk, slower)")
    parser.add_argument("--class-prompt", metavar="P", help='DreamBooth class prompt, e.g. "a photo of a woman"')
    parser.add_argument("--class-images", type=int, metavar="N", help="DreamBooth class images to generate (default 100)")
    parser.add_argument("--prior-weight", type=float, metavar="W", help="weight of the class (prior) loss (default 1.0)")
    parser.add_argument("--full-unet", action="store_true", help="DreamBooth: fine-tune the whole UNet instead of a LoRA")
    parser.add_argument("--sample-every", type=int, metavar="N", help="render samples every N steps (default: at the end only)")
    parser.add_argument("--sample-prompt", action="append", metavar="P", help="a sample prompt (repeatable)")
    parser.add_argument("--sample-steps", type=int, metavar="N", help="denoising steps of each sample (default 20)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint every N steps (default 100)")
    parser.add_argument("--keep-checkpoints", type=int, metavar="K", help="checkpoints kept (default 3)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--lr-scheduler", choices=LR_SCHEDULERS)
    parser.add_argument("--warmup-steps", type=int, metavar="N")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="less memory, about 20%% slower")
    parser.add_argument("--precision", choices=PRECISIONS, help="mixed precision on GPU (default: bf16 where supported, else fp16)")
    parser.add_argument("--save-precision", choices=SAVE_PRECISIONS, help="precision of the saved LoRA (default fp16)")
    return parser


def _in_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got '{value}'")
