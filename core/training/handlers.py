"""The "train-lora" and "train-dreambooth" job handlers, as the worker runs them.

A handler reads its TrainingConfig from the job's payload, resolves the character and the base
checkpoint, loads the base, (DreamBooth) renders the class images it lacks, caches latents and
caption embeddings, resumes from the checkpoint of `context.resume_step` if there is one, and
trains: every step reports its loss, every `sample_every` steps a sample sheet
(work_dir/samples/step-N.png, fixed seed) goes with the progress, every `checkpoint_every` steps a
checkpoint. At each step boundary it asks `context.stop_requested()`: on "pause", "window" or
"preempt" it checkpoints and raises JobStopped; on "cancel" it just stops. At the end the LoRA is
exported in kohya's format (the full UNet as a diffusers checkpoint folder) and registered as
the character's next model version, in the transaction that marks the job done (see
core/training/output.py): a worker killed while finishing leaves the job to finish again, from
its final checkpoint, under the same name.

The work_dir holds the job's state between runs: dataset.json (the pictures and captions, fixed
when the job first started), job.json (start time, sample prompts), cache/ (latents and caption
embeddings), class-images/, checkpoints/ and samples/.
"""

from __future__ import annotations

import gc
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from core.catalog.service import Catalog
from core.common import describe
from core.engine.devices import DeviceChoice, DeviceError, choose_device
from core.engine.pipeline_cache import PipelineCache, WeightsRef
from core.jobs.context import JobContext, JobStopped
from core.models.registry import ModelRecord, ModelRegistry
from core.training import dataset as data
from core.training import output, samples
from core.training.checkpoints import CHECKPOINT_DIRNAME, find_checkpoint, list_checkpoints, save_checkpoint
from core.training.config import ConfigError, TrainingConfig
from core.training.dreambooth import CLASS_DIRNAME, ensure_class_images
from core.training.kohya_export import kohya_metadata, peft_to_kohya, write_kohya_lora
from core.training.lora_trainer import LoraTrainer, Precision, choose_precision
from storage.errors import LibraryError

JOB_STATE = "job.json"
SAMPLES_DIRNAME = "samples"


class TrainingRefused(LibraryError):
    """A training that cannot run as asked; the message says what to change."""


def train_lora(context: JobContext) -> dict[str, Any]:
    return run_training(context, "lora")


def train_dreambooth(context: JobContext) -> dict[str, Any]:
    return run_training(context, "dreambooth")


# "preempt" is also what a worker that shuts down answers: either way the job goes back to the queue.
STOP_WORDS = {"pause": "paused", "preempt": "back in the queue", "window": "its time window closed"}


def config_from_payload(payload: dict[str, Any]) -> TrainingConfig:
    """The payload is TrainingConfig.to_json(), or {"config": that}."""
    values = payload.get("config", payload) if isinstance(payload, dict) else payload
    return TrainingConfig.from_json(dict(values))


def run_training(context: JobContext, kind: str) -> dict[str, Any]:
    config = config_from_payload(context.payload)
    if config.kind != kind:
        raise ConfigError(f"job kind train-{kind} holds a --kind {config.kind} config")
    try:
        return _Training(context, config).run()
    except torch.OutOfMemoryError as exc:
        raise TrainingRefused(
            f"out of memory while training ({str(exc).splitlines()[0][:120]}); try --gradient-checkpointing, a smaller "
            "--batch or --resolution, --optimizer adamw8bit (with bitsandbytes installed), or a LoRA instead of --full-unet"
        ) from None
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _Training:
    def __init__(self, context: JobContext, config: TrainingConfig):
        self.context = context
        self.config = config
        self.library = context.library
        self.work_dir = Path(context.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.work_dir / CHECKPOINT_DIRNAME
        self.total = config.steps

    # -- the whole job --------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from core.common.quiet import quiet_libraries

        quiet_libraries()
        config = self.config
        character = Catalog(self.library).show_character(config.character, config.project)
        registry = ModelRegistry(self.library)
        base = self._base(registry)
        family = base.family or "sd15"
        base_sha = registry.sha256_of(base)
        device = self._device()
        precision = choose_precision(device, config.precision)
        resolution = config.resolution_for(family)
        state = self._job_state(character)
        images = data.read_manifest(self.work_dir, self.library.root)
        if images is None:
            images = data.instance_images(character, resolution, config.buckets_for(family))
            data.write_manifest(self.work_dir, images, self.library.root)
        self.context.progress(self.context.resume_step, self.total, message=f"loading {base.name}")
        pipe = self._load_pipeline(base, base_sha, device, precision)

        class_images: list[data.TrainingImage] = []
        if config.uses_prior:
            assert config.class_prompt is not None  # validate() requires one for DreamBooth
            paths = self._class_images(pipe, resolution, precision)
            class_images = data.class_images(paths, config.class_prompt, resolution)

        trainer = LoraTrainer(config, pipe, family, device, precision)
        self.context.progress(self.context.resume_step, self.total, message="caching latents and captions")
        fingerprint = {"base": base_sha, "family": family, "resolution": resolution, "flip": config.flip}
        trainer.prepare_data(images, class_images, self.work_dir, fingerprint)
        start = self._resume(trainer)
        self._train(trainer, state, start, resolution, precision)

        sample = self._sample(trainer, state, self.total, resolution, precision)
        if config.full_unet:
            target, kind = self._export_checkpoint(trainer, character, base), "checkpoint"
        else:
            target = self._export_lora(trainer, character, base, base_sha, family, images, class_images, state, resolution, precision)
            kind = "lora"
        self.context.progress(self.total, self.total, sample=sample, message=f"saved {target.name} (version {target.version})")
        trainer.release()
        return {
            "model": target.name,
            "path": target.path,
            "version": target.version,
            "steps": self.total,
            "kind": kind,
            "character": character.name,
            "resumed_from": start,
            "outputs": [target.path],
            "sample": str(sample),
            "optimizer": trainer.optimizer_name,
        }

    # -- set-up ---------------------------------------------------------------------------
    def _base(self, registry: ModelRegistry) -> ModelRecord:
        record = registry.get(self.config.base) if self.config.base else registry.require_default("checkpoint")
        if record.kind != "checkpoint":
            raise TrainingRefused(f"'{record.name}' is {record.kind}, not a checkpoint; pick a base with --base")
        if record.family not in (None, "sd15", "sdxl"):
            raise TrainingRefused(f"'{record.name}' is a {record.family} checkpoint; training supports SD1.5 and SDXL")
        return record

    def _device(self) -> str:
        wanted = self.config.device
        if wanted == "auto":
            worker_device = getattr(self.context, "device", None)
            wanted = worker_device if isinstance(worker_device, str) else getattr(worker_device, "device", None) or "auto"
        try:
            return choose_device(wanted, "fp32").device
        except DeviceError as exc:
            raise TrainingRefused(str(exc)) from None

    def _load_pipeline(self, base: ModelRecord, base_sha: str, device: str, precision: Precision):
        config_dir = base.details.get("config_dir")
        ref = WeightsRef(base.name, base.kind, Path(base.path), base_sha, base.family, Path(config_dir) if config_dir else None)
        # A cache of its own: the trainer changes the UNet it gets, which a shared warm pipeline must never see.
        pipe, _family, _scheduler = PipelineCache(DeviceChoice(device, precision.weight_dtype)).pipeline_for(ref)
        return pipe

    def _job_state(self, character) -> dict[str, Any]:
        """Facts fixed when the job first starts: start time, trigger word, sample prompts."""
        path = self.work_dir / JOB_STATE
        if path.exists():
            return json.loads(path.read_text())
        state = {
            "started_at": datetime.now(timezone.utc).isoformat(),
            "trigger_word": data.trigger_of(character),
            "sample_prompts": list(self.config.sample_prompts or data.default_sample_prompts(character)),
            "character_id": character.id,
        }
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(json.dumps(state, indent=1))
        os.replace(temp, path)
        return state

    def _class_images(self, pipe, resolution: int, precision: Precision) -> list[Path]:
        config = self.config

        def on_image(done: int, count: int) -> None:
            self.context.progress(0, self.total, message=f"class images {done}/{count}: {config.class_prompt}")

        paths, reason = ensure_class_images(
            pipe,
            config,
            self.work_dir / CLASS_DIRNAME,
            resolution,
            precision.autocast_dtype,
            on_image=on_image,
            should_stop=self.context.stop_requested,
        )
        if reason:
            # Every finished class image is on disk already: the next run renders only the rest.
            self.context.progress(0, self.total, message=f"stopped ({reason}) after {len(paths)}/{config.class_images} class images")
            raise JobStopped(reason)
        return paths

    def _resume(self, trainer: LoraTrainer) -> int:
        step = int(self.context.resume_step or 0)
        found = None
        if step:
            given = getattr(self.context, "resume_checkpoint", None)
            if given is not None and Path(given).exists():
                found = (step, Path(given))
            else:
                found = find_checkpoint(self.checkpoints, at_most=step)
        start = trainer.restore(found[1]) if found else 0
        # Checkpoints past the start are from a run this one replaces: they would outlive the new
        # ones when the oldest are pruned.
        for later, path in list_checkpoints(self.checkpoints):
            if later > start:
                path.unlink(missing_ok=True)
        if step and not found:
            self.context.progress(0, self.total, message=f"no checkpoint at step {step} is left; training starts over")
        return start

    # -- the loop -------------------------------------------------------------------------
    def _train(self, trainer: LoraTrainer, state: dict[str, Any], start: int, resolution: int, precision: Precision) -> None:
        config, total = self.config, self.total
        last_checkpoint = start if start else None
        began, smoothed = time.monotonic(), None
        while trainer.step < total:
            reason = self.context.stop_requested()
            if reason:
                self._stop(trainer, reason, last_checkpoint)
            loss = trainer.train_step()
            step = trainer.step
            smoothed = loss if smoothed is None else 0.9 * smoothed + 0.1 * loss
            sample = checkpoint = None
            if config.sample_every and step % config.sample_every == 0 and step < total:
                sample = self._sample(trainer, state, step, resolution, precision)
            if step % config.checkpoint_every == 0 or step == total:
                checkpoint = self._checkpoint(trainer)
                last_checkpoint = step
            rate = (step - start) / max(time.monotonic() - began, 1e-9)
            message = f"step {step}/{total}, loss {smoothed:.4f}, {rate:.2f} steps/s, ETA {describe.duration((total - step) / rate)}"
            self.context.progress(step, total, loss=loss, sample=sample, message=message, checkpoint=checkpoint)

    def _stop(self, trainer: LoraTrainer, reason: str, last_checkpoint: int | None) -> None:
        step = trainer.step
        if reason == "cancel":
            raise JobStopped(reason)
        if last_checkpoint == step and step:
            path = find_checkpoint(self.checkpoints, at_most=step)
            checkpoint = path[1] if path and path[0] == step else self._checkpoint(trainer)
        elif step:
            checkpoint = self._checkpoint(trainer)
        else:
            checkpoint = None  # nothing trained yet: the next run starts at step 0 anyway
        why = STOP_WORDS.get(reason, reason)
        self.context.progress(step, self.total, message=f"stopped at step {step}: {why}", checkpoint=checkpoint)
        raise JobStopped(reason)

    def _checkpoint(self, trainer: LoraTrainer) -> Path:
        return save_checkpoint(
            self.checkpoints, trainer.step, trainer.checkpoint_weights(), trainer.checkpoint_state(), self.config.keep_checkpoints
        )

    def _sample(self, trainer: LoraTrainer, state: dict[str, Any], step: int, resolution: int, precision: Precision) -> Path:
        images = samples.render(
            trainer.pipe,
            list(state["sample_prompts"]),
            self.config.sample_seed,
            self.config.sample_steps,
            (resolution, resolution),
            precision.autocast_dtype,
        )
        return samples.save_png(samples.side_by_side(images), self.work_dir / SAMPLES_DIRNAME / f"step-{step:06d}.png")

    # -- results --------------------------------------------------------------------------
    def _training_details(self, base: ModelRecord, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "job_id": getattr(self.context, "job_id", None),
            "kind": self.config.kind,
            "base": base.name,
            "steps": self.total,
            "rank": None if self.config.full_unet else self.config.rank,
            "trigger_word": state["trigger_word"],
            "started_at": state["started_at"],
        }

    def _export_lora(
        self, trainer, character, base, base_sha, family, images, class_images, state, resolution, precision
    ) -> output.OutputTarget:
        config = self.config
        dtype = torch.float16 if config.save_precision == "fp16" else torch.float32
        tensors = peft_to_kohya(trainer.lora_states(), family, config.network_alpha, trainer.unet.config.layers_per_block, dtype)
        target = output.reserve_output(self.context, character.name, character.id)
        metadata = kohya_metadata(
            family=family,
            output_name=target.name,
            rank=config.rank,
            alpha=config.network_alpha,
            steps=self.total,
            trigger_word=state["trigger_word"],
            base_name=base.name,
            base_sha256=base_sha,
            dataset_sha256=data.dataset_sha256(images),
            image_sha256s=sorted({i.sha256 for i in images}),
            tag_frequency=data.tag_frequency(images),
            config={
                **config.to_json(),
                "buckets": config.buckets_for(family),
                "resolution": resolution,
                "text_encoder_lr": config.text_encoder_lr or config.lr / 2,
            },
            resolution=resolution,
            train_text_encoder=config.train_text_encoder,
            started_at=datetime.fromisoformat(state["started_at"]),
            num_class_images=len(class_images),
            mixed_precision=precision.name,
            optimizer=trainer.optimizer_name,
        )
        output.clear_temp(target)
        write_kohya_lora(target.temp, tensors, metadata)
        self._install(target, "lora", base, state)
        return target

    def _export_checkpoint(self, trainer: LoraTrainer, character, base: ModelRecord) -> output.OutputTarget:
        """The fine-tuned UNet with the base's other parts, as a diffusers checkpoint folder."""
        dtype = torch.float16 if self.config.save_precision == "fp16" else torch.float32
        target = output.reserve_output(self.context, character.name, character.id, suffix="")
        trainer.unet.to(dtype)
        output.clear_temp(target)
        trainer.pipe.save_pretrained(str(target.temp), safe_serialization=True)
        output.fsync_tree(target.temp)
        self._install(target, "checkpoint", base, json.loads((self.work_dir / JOB_STATE).read_text()))
        return target

    def _install(self, target: output.OutputTarget, kind: str, base: ModelRecord, state: dict[str, Any]) -> None:
        """Into place, with its row left for the worker to commit with the job's done state."""
        output.install_output(target)
        self.context.on_done(output.registration(self.library, target, kind, self._training_details(base, state)))
