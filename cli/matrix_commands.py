"""`matrix`: a prompt matrix (X/Y plot), rendered now or queued for the worker."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.generate_commands import ProgressBar, add_engine_options
from cli.output import Output
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.generation.request import RequestError
from core.generation.request_options import request_from_options
from core.matrix.request import AXIS_KINDS, MATRIX_JOB_KIND, Axis, MatrixRequest
from core.models.catalog import ModelCatalog
from storage.errors import LibraryError

AXIS_HELP = (
    "KIND:V1|V2|... with KIND one of " + ", ".join(AXIS_KINDS) + " (prompt: the first value is replaced in the prompt; lora:NAME:W1|W2)"
)


def register(tree: CommandTree) -> None:
    p = tree.command("matrix", "a prompt matrix: one request, its prompt or settings varied across a grid, every cell one seed", matrix)
    p.add_argument("--x", required=True, metavar="AXIS", help=AXIS_HELP)
    p.add_argument("--y", metavar="AXIS", help="a second axis, down the rows")
    p.add_argument("--character", action="append", default=[], metavar="NAME")
    p.add_argument("--project", metavar="P")
    p.add_argument("--prompt", metavar="P")
    p.add_argument("--negative", default="", metavar="N")
    p.add_argument("--base", metavar="MODEL")
    p.add_argument("--method", choices=["ip-adapter", "faceid", "instantid", "none"], default="ip-adapter")
    p.add_argument("--ip-scale", type=float, default=0.7, metavar="S")
    p.add_argument("--lora", action="append", default=[], metavar="MODEL[:WEIGHT]")
    p.add_argument("--control", action="append", default=[], metavar="TYPE_OR_MODEL=IMAGE[:SCALE]")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--cfg", type=float)
    p.add_argument("--sampler")
    p.add_argument("--size", metavar="WxH")
    p.add_argument("--out", metavar="FILE.png", help="the grid image (default: matrix.png here); ignored with --queue")
    p.add_argument("--queue", action="store_true", help="queue it for the worker instead of rendering now")
    add_engine_options(p)


def matrix(catalog: Catalog, args, out: Output) -> None:
    try:
        request = request_from_options(vars(args), args.project, ModelCatalog(catalog.library).render_defaults(args.base))
        wanted = MatrixRequest(request, Axis.parse(args.x), Axis.parse(args.y) if args.y else None)
    except RequestError as exc:
        raise LibraryError(str(exc)) from None
    if args.queue:
        return _queue(catalog, wanted, args, out)
    from core.engine.pipeline_cache import MemoryOptions
    from core.generation.service import GenerationService
    from core.matrix.render import make_matrix, matrix_file

    target = matrix_file(Path(args.out or "matrix.png"))
    memory = MemoryOptions(args.attention_slicing, args.vae_slicing, args.vae_tiling, args.cpu_offload)
    service = GenerationService(catalog.library, args.device, args.precision, memory, args.memory_budget)
    bar = ProgressBar(enabled=not out.json and sys.stderr.isatty())
    made = make_matrix(catalog.library, wanted, target, service, progress=bar.update)
    bar.finish()
    lines = [f"{wanted.rows}x{wanted.columns} matrix (seed {made.seed}): {made.png}"]
    lines += [f"  #{record.id}  {record.path}" for record in made.cells]
    out.emit(made.to_json(), "\n".join(lines))


def _queue(catalog: Catalog, wanted: MatrixRequest, args, out: Output) -> None:
    from core.jobs.estimates import estimate
    from core.jobs.queue import JobQueue
    from core.matrix.enqueue import enqueue_matrix

    try:
        record = enqueue_matrix(JobQueue(catalog.library), wanted, args.project)
    except RequestError as exc:
        raise LibraryError(str(exc)) from None
    expected = estimate(catalog.library, record.kind, record.payload)
    out.emit(
        record.to_json(),
        f"queued job {record.id} ({MATRIX_JOB_KIND}, {wanted.rows}x{wanted.columns})" + (f": {expected.describe()}" if expected else ""),
    )
