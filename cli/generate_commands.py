"""`generate` and `generation list/show`: images of characters from a terminal or a batch file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.generation.request import GenerationRequest, RequestError
from core.generation.request_options import request_from_options
from core.models.catalog import ModelCatalog
from storage.errors import LibraryError

# The names a batch item takes: the same as the flags, as the generate contract says.
BATCH_KEYS = {
    "character",
    "prompt",
    "negative",
    "base",
    "ip_adapter",
    "ip_scale",
    "method",
    "lora",
    "control",
    "seed",
    "steps",
    "cfg",
    "sampler",
    "size",
    "count",
}


def register(tree: CommandTree) -> None:
    p = tree.command("generate", "render images of characters (IP-Adapter identity, LoRAs, ControlNets)", generate)
    p.add_argument("--character", action="append", default=[], metavar="NAME", help="a character to keep consistent (repeatable)")
    p.add_argument("--project", metavar="P", help="the characters' project, when names are ambiguous")
    p.add_argument("--prompt", metavar="P")
    p.add_argument("--negative", default="", metavar="N")
    p.add_argument("--base", metavar="MODEL", help="checkpoint (default: the default checkpoint)")
    p.add_argument("--ip-adapter", metavar="MODEL", help="IP-Adapter (default: the registered one of the base's family)")
    p.add_argument("--ip-scale", type=float, default=0.7, metavar="S", help="identity strength, 0-1.5 (default 0.7)")
    p.add_argument(
        "--method",
        choices=["ip-adapter", "faceid", "instantid", "photomaker", "none"],
        default="ip-adapter",
        help="how the characters' identity is kept: CLIP image (ip-adapter), face identity (faceid, instantid), or not at all",
    )
    p.add_argument("--lora", action="append", default=[], metavar="MODEL[:WEIGHT]")
    p.add_argument(
        "--control",
        action="append",
        default=[],
        metavar="MODEL[:TYPE]=IMAGE[:SCALE]",
        help="MODEL: a ControlNet or T2I-Adapter name, or a control type; TYPE: the image's type, for a union ControlNet",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="default: the base's (30 for SD 1.5 and SDXL)")
    p.add_argument("--cfg", type=float, help="default: the base's (7 for SD 1.5, 6 for SDXL)")
    p.add_argument("--sampler", help="default: DPM++ 2M Karras")
    p.add_argument("--size", metavar="WxH", help="default: the base's own size (512x512 for SD 1.5, 1024x1024 for SDXL)")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--best-of", type=int, metavar="N", help="render N seeds, keep them all, mark the most consistent one")
    p.add_argument("--batch", metavar="FILE.json", help="a JSON list of requests, run in one warm process")
    p.add_argument("--from-image", metavar="PNG", help="make again the image this PNG was made from (its character-studio metadata)")
    p.add_argument(
        "--queue",
        action="store_true",
        help="queue one job per request for the worker (`character-studio worker`) instead of rendering here",
    )
    add_engine_options(p)

    generations = tree.group("generation", "list and show generated images")
    p = tree.action(generations, "list", "list generations, newest first", generation_list)
    p.add_argument("--character", metavar="NAME")
    p.add_argument("--project", metavar="P")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--sort", choices=["date", "score"], default="date", help="newest first, or most consistent first")
    p = tree.action(generations, "show", "show a generation: request, seed, files, scores", generation_show)
    p.add_argument("id", type=int, metavar="ID")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("device and memory")
    group.add_argument("--device", default="auto", help="auto, cuda, cuda:1, mps or cpu")
    group.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    group.add_argument("--attention-slicing", action="store_true", help="less VRAM, a little slower")
    group.add_argument("--vae-slicing", action="store_true", help="decode batches one image at a time")
    group.add_argument("--vae-tiling", action="store_true", help="decode large images in tiles")
    group.add_argument("--cpu-offload", action="store_true", help="keep models in RAM, move each to the GPU when used")
    group.add_argument(
        "--memory-budget",
        type=memory_budget_bytes,
        metavar="GB",
        help="models kept loaded between generations, in GB; beyond it the least recently used are unloaded "
        "(default: the device's free memory less a margin for rendering)",
    )


def memory_budget_bytes(text: str) -> int:
    from core.common.memory_budget import budget_from_gigabytes

    try:
        return budget_from_gigabytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def request_from_image(path: str, seed: int | None) -> GenerationRequest:
    from dataclasses import replace

    from core.generation.png_metadata import read_png_metadata

    try:
        request = read_png_metadata(path).request
    except FileNotFoundError:
        raise LibraryError(f"{path} does not exist") from None
    except OSError:
        raise LibraryError(f"{path} is not a PNG image") from None
    except RequestError as exc:
        raise LibraryError(f"{path}: its metadata cannot be used: {exc}") from None
    if request is None:
        raise LibraryError(f"{path} carries no character-studio request (it was not made by this app), so it cannot be made again exactly")
    return replace(request, seed=seed) if seed is not None else request


def read_batch(path: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LibraryError(f"batch file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise LibraryError(f"batch file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise LibraryError(f"batch file {path} must hold a JSON list of request objects")
    for number, item in enumerate(items, 1):
        unknown = set(item) - BATCH_KEYS
        if unknown:
            raise LibraryError(f"batch item {number}: unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(BATCH_KEYS))}")
    return items


def generate(catalog: Catalog, args, out: Output) -> None:
    models = ModelCatalog(catalog.library)
    try:
        if args.from_image:
            requests = [request_from_image(args.from_image, args.seed)]
        elif args.batch:
            # A batch file is read like any file: its images must be the library's own.
            requests = [
                request_from_options(item, args.project, models.render_defaults(item.get("base") or args.base)).confined_to_library()
                for item in read_batch(args.batch)
            ]
        else:
            requests = [request_from_options(vars(args), args.project, models.render_defaults(args.base))]
    except RequestError as exc:
        raise LibraryError(str(exc)) from None
    if args.queue:
        return queue_generations(catalog, requests, args, out)
    from core.engine.pipeline_cache import MemoryOptions
    from core.generation.service import GenerationService

    memory = MemoryOptions(args.attention_slicing, args.vae_slicing, args.vae_tiling, args.cpu_offload)
    service = GenerationService(catalog.library, args.device, args.precision, memory, args.memory_budget)
    bar = ProgressBar(enabled=sys.stderr.isatty() and not out.json)
    records = []
    for number, request in enumerate(requests, 1):
        bar.label = f"request {number}/{len(requests)}" if len(requests) > 1 else ""
        records += service.generate(request, progress=bar.update, best_of=args.best_of)
    bar.finish()
    lines = [f"#{r.id}  seed {r.seed}  {r.width}x{r.height}  {describe_scores(r)}{'  BEST' if r.best else ''}  {r.path}" for r in records]
    lines += [f"warning: #{r.id}: {w}" for r in records for w in r.warnings]
    out.emit([r.to_json() for r in records], "\n".join(lines))


def queue_generations(catalog: Catalog, requests: list[GenerationRequest], args, out: Output) -> None:
    """One "generate" job per request; the worker renders them (interactive: before trainings)."""
    from core.generation.enqueue import check_generation, enqueue_generation
    from core.jobs.queue import JobQueue

    queue = JobQueue(catalog.library)
    try:
        for request in requests:  # all of a batch, before any is queued
            check_generation(queue, request)
        records = [enqueue_generation(queue, request, args.best_of, args.project) for request in requests]
    except RequestError as exc:
        raise LibraryError(str(exc)) from None
    lines = [f"queued job {r.id} (generate{', ' + r.character if r.character else ''}){_expected(catalog, r)}" for r in records]
    out.emit([r.to_json() for r in records], "\n".join(lines))


def _expected(catalog: Catalog, record) -> str:
    from core.jobs.estimates import estimate

    found = estimate(catalog.library, record.kind, record.payload)
    return f": {found.describe()}" if found else ""


def describe_scores(record) -> str:
    """`Aria 0.83 (face)`, per character; `-` where nothing could be measured."""
    if not record.characters:
        return "-"
    parts = []
    for name in record.characters:
        score = record.scores.get(name)
        method = record.score_methods.get(name)
        parts.append(f"{name} {score:.2f} ({method})" if score is not None else f"{name} -")
    return ", ".join(parts)


class ProgressBar:
    """A one-line bar on stderr, only on a terminal; pipes and --json get nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.label = ""

    def update(self, progress) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * progress.step / progress.total)
        image = f" image {progress.image_index + 1}/{progress.image_count}" if progress.image_count > 1 else ""
        label = f" {self.label}" if self.label else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] step {progress.step}/{progress.total}{image}{label}  ")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def generation_list(catalog: Catalog, args, out: Output) -> None:
    from core.generation.queries import list_generations

    records = list_generations(catalog.library, args.character, args.project, args.limit, args.sort)
    rows = [
        (
            str(r.id) + ("*" if r.best else ""),
            r.created_at or "",
            f"{r.width}x{r.height}",
            str(r.seed),
            describe_scores(r),
            r.request.get("prompt", "")[:40],
        )
        for r in records
    ]
    text = table(("ID", "CREATED", "SIZE", "SEED", "CONSISTENCY", "PROMPT"), rows, empty="No generations yet.")
    out.emit([r.to_json() for r in records], text)


def generation_show(catalog: Catalog, args, out: Output) -> None:
    from core.generation.png_metadata import read_png_metadata
    from core.generation.queries import get_generation

    record = get_generation(catalog.library, args.id)
    metadata = read_png_metadata(record.path)
    data = record.to_json() | {"parameters": metadata.parameters, "metadata": metadata.document}
    text = "\n".join(
        [
            f"generation #{record.id}  ({record.created_at})",
            f"  file: {record.path}",
            f"  characters: {', '.join(record.characters) or '-'}",
            f"  seed: {record.seed}   size: {record.width}x{record.height}   parent: {record.parent_id or '-'}",
            f"  consistency: {describe_scores(record)}{'   (best of its batch)' if record.best else ''}",
            *(f"  warning: {w}" for w in record.warnings),
            "  parameters:",
            *("    " + line for line in (metadata.parameters or "").splitlines()),
        ]
    )
    out.emit(data, text)
