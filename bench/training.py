"""Training benchmark: what latent caching buys, and what a LoRA step costs in time and memory.

The same LoRA training (8 flat-colour pictures with captions, the trainer the worker runs:
core.training.lora_trainer) is timed three ways, each in a fresh process so peak memory is its own:
  cached      latents and caption embeddings computed once, before the first step (the default);
  uncached    every step encodes its pictures through the VAE (--no-cache-latents);
  cached+gc   cached, with gradient checkpointing (less activation memory, more compute).
For each: the one-off preparation time, steps per second over the timed steps (after warm-up
steps), and peak memory: torch.cuda.max_memory_allocated on a GPU, the process's peak RSS on the CPU.

    python bench/training.py --json                 # tiny SD1.5 models, CPU, well under a minute
    python bench/training.py --json --real-size     # the real SD1.5 architecture (random weights), for a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RUNS = {
    "cached": {"cache_latents": True},
    "uncached": {"cache_latents": False},
    "cached+gc": {"cache_latents": True, "gradient_checkpointing": True},
}
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 200, 40), (200, 60, 200), (40, 200, 200), (240, 240, 240), (20, 20, 20)]


def build_checkpoint(folder: Path, family: str, real_size: bool) -> Path:
    if not real_size:
        from core.demo.tiny_models import save_tiny_checkpoint

        return save_tiny_checkpoint(folder / f"tiny-{family}", family)
    return build_real_size_checkpoint(folder, family)


def build_real_size_checkpoint(folder: Path, family: str) -> Path:
    """Only the checkpoint of bench/real_size.py's model set (no adapters): the real
    architecture from the configs shipped in resources/, random weights, fp16 on disk."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from resources import model_config_dir

    config = model_config_dir(family)
    torch.manual_seed(0)
    dtype = torch.float16
    components = {
        "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).to(dtype),
        "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")).to(dtype),
        "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).to(dtype),
        "tokenizer": CLIPTokenizer.from_pretrained(config / "tokenizer"),
    }
    scheduler_class = DiffusionPipeline.load_config(config)["scheduler"][1]
    components["scheduler"] = getattr(diffusers, scheduler_class).from_pretrained(config, subfolder="scheduler")
    if family == "sdxl":
        components["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(config / "text_encoder_2")).to(dtype)
        components["tokenizer_2"] = CLIPTokenizer.from_pretrained(config / "tokenizer_2")
        pipe = diffusers.StableDiffusionXLPipeline(**components)
    else:
        pipe = diffusers.StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    path = folder / f"real-size-{family}"
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def make_pictures(folder: Path, resolution: int):
    from PIL import Image, ImageDraw

    from core.training.dataset import TrainingImage

    images = []
    for index, colour in enumerate(COLOURS):
        width, height = (resolution, resolution) if index % 2 == 0 else (resolution * 3 // 2, resolution)
        picture = Image.new("RGB", (width, height), colour)
        ImageDraw.Draw(picture).ellipse([width // 4, height // 4, width * 3 // 4, height * 3 // 4], fill=COLOURS[-1 - index])
        path = folder / f"picture-{index}.png"
        picture.save(path)
        caption = f"benchchar, {'portrait' if index % 2 == 0 else 'landscape'}, colour {index}"
        images.append(TrainingImage(str(path), f"{index:064d}", caption, (resolution, resolution)))
    return images


class PeakRss(threading.Thread):
    """Samples the process's RSS (torch's CPU allocations are invisible to tracemalloc)."""

    def __init__(self, interval: float = 0.005):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, self.process.memory_info().rss)


def one_run(options: dict) -> dict:
    """In a fresh process: load, prepare the data, warm up, time the steps."""
    import torch

    from core.common.quiet import quiet_libraries
    from core.engine.devices import DeviceChoice, choose_device
    from core.engine.pipeline_cache import PipelineCache, WeightsRef
    from core.training.config import TrainingConfig
    from core.training.lora_trainer import LoraTrainer, choose_precision

    quiet_libraries()
    device = choose_device(options["device"], "fp32").device
    precision = choose_precision(device, "auto")
    checkpoint = Path(options["checkpoint"])
    family = options["family"]
    pipe = PipelineCache(DeviceChoice(device, precision.weight_dtype)).pipeline_for(
        WeightsRef(checkpoint.name, "checkpoint", checkpoint, checkpoint.name, family)
    )[0]
    work_dir = Path(options["work_dir"])
    images = make_pictures(work_dir, options["resolution"])
    config = TrainingConfig(
        character="bench",
        steps=options["warmup"] + options["steps"],
        rank=options["rank"],
        batch=options["batch"],
        resolution=options["resolution"],
        flip=True,
        **RUNS[options["run"]],
    ).validate()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss = PeakRss()
    rss.start()
    trainer = LoraTrainer(config, pipe, family, device, precision)
    began = time.perf_counter()
    trainer.prepare_data(images, [], work_dir / options["run"], {"bench": options["run"]})
    if cuda:
        torch.cuda.synchronize()
    prepare_s = time.perf_counter() - began
    for _ in range(options["warmup"]):
        trainer.train_step()
    if cuda:
        torch.cuda.synchronize()
    began = time.perf_counter()
    losses = [trainer.train_step() for _ in range(options["steps"])]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    peak_rss = rss.stop()
    result = {
        "prepare_s": round(prepare_s, 3),
        "steps": options["steps"],
        "seconds": round(seconds, 3),
        "steps_per_s": round(options["steps"] / seconds, 3),
        "s_per_step": round(seconds / options["steps"], 4),
        "final_loss": round(sum(losses[-3:]) / len(losses[-3:]), 4),
        "trainable_params": sum(p.numel() for p in trainer.trainable.values()),
        "optimizer": trainer.optimizer_name,
        "precision": precision.name,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--real-size", action="store_true", help="real SD architecture with random weights (for a GPU)")
    parser.add_argument("--family", default="sd15", choices=["sd15", "sdxl"])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30 tiny, 20 real size)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=None, help="default 64 tiny, 512 (SD1.5) / 1024 (SDXL) real size")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which of {', '.join(RUNS)}")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run, in a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(json.loads(args.one))))
        return 0

    from core.common.quiet import quiet_libraries

    quiet_libraries()
    resolution = args.resolution or ((1024 if args.family == "sdxl" else 512) if args.real_size else 64)
    steps = args.steps or (20 if args.real_size else 30)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="cs-bench-training-") as scratch:
        scratch_path = Path(scratch)
        began = time.perf_counter()
        checkpoint = build_checkpoint(scratch_path / "models", args.family, args.real_size)
        build_s = time.perf_counter() - began
        for run in args.runs.split(","):
            options = {
                "run": run, "checkpoint": str(checkpoint), "family": args.family, "device": args.device,
                "resolution": resolution, "batch": args.batch, "rank": args.rank, "steps": steps, "warmup": args.warmup,
                "work_dir": str(scratch_path / "work"),
            }  # fmt: skip
            Path(options["work_dir"]).mkdir(exist_ok=True)
            done = subprocess.run(
                [sys.executable, __file__, "--one", json.dumps(options)],
                capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )  # fmt: skip
            if done.returncode != 0:
                results[run] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
                continue
            results[run] = json.loads(done.stdout.strip().splitlines()[-1])
            if not args.json:
                print(f"{run}: {results[run]}", file=sys.stderr)
    import torch

    from core.engine.devices import choose_device

    device = choose_device(args.device, "fp32").device
    summary = {
        "benchmark": "training",
        "model": f"{'real-size' if args.real_size else 'tiny'}-{args.family}",
        "device": device + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else f" ({torch.get_num_threads()} threads)"),
        "resolution": resolution,
        "batch": args.batch,
        "rank": args.rank,
        "pictures": len(COLOURS),
        "flip": True,
        "timed_steps": steps,
        "warmup_steps": args.warmup,
        "model_build_s": round(build_s, 2),
        "runs": results,
    }
    cached, uncached = results.get("cached", {}), results.get("uncached", {})
    if "steps_per_s" in cached and "steps_per_s" in uncached:
        summary["caching_speedup"] = round(cached["steps_per_s"] / uncached["steps_per_s"], 2)
        # Steps after which caching's one-off preparation has paid for itself.
        saved_per_step = uncached["s_per_step"] - cached["s_per_step"]
        extra = cached["prepare_s"] - uncached["prepare_s"]
        summary["caching_pays_off_after_steps"] = round(extra / saved_per_step, 1) if saved_per_step > 0 else None
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
