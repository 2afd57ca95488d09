"""`sheet NAME --kind turnaround|expressions`: a labelled character sheet as PNG and PDF."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.generate_commands import ProgressBar, add_engine_options
from cli.output import Output
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.generation.request import RequestError, parse_size
from storage.errors import LibraryError


def register(tree: CommandTree) -> None:
    p = tree.command("sheet", "a character sheet: turnaround or expressions, as PNG and PDF (each panel a generation)", sheet)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", choices=["turnaround", "expressions"], default="turnaround")
    p.add_argument("--project", metavar="P")
    p.add_argument("--out", metavar="FILE.png|FILE.pdf", help="default: NAME-KIND.png (and .pdf) here")
    p.add_argument("--size", metavar="WxH", help="panel size (default 512x768 turnaround, 512x512 expressions)")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--prompt", default="", help="added to every panel's prompt (outfit, style...)")
    p.add_argument("--base", metavar="MODEL")
    add_engine_options(p)


def sheet(catalog: Catalog, args, out: Output) -> None:
    from core.engine.pipeline_cache import MemoryOptions
    from core.generation.service import GenerationService
    from core.sheets.render import make_sheet

    try:
        size = parse_size(args.size) if args.size else None
    except RequestError as exc:
        raise LibraryError(str(exc)) from None
    target = Path(args.out) if args.out else Path(f"{args.name.lower().replace(' ', '-')}-{args.kind}.png")
    memory = MemoryOptions(args.attention_slicing, args.vae_slicing, args.vae_tiling, args.cpu_offload)
    service = GenerationService(catalog.library, args.device, args.precision, memory, args.memory_budget)
    bar = ProgressBar(enabled=not out.json and sys.stderr.isatty())
    made = make_sheet(
        catalog.library,
        args.name,
        args.kind,
        target,
        service,
        args.project,
        size,
        args.seed,
        args.steps,
        args.prompt,
        base=args.base,
        progress=bar.update,
    )
    bar.finish()
    lines = [f"{made.kind} sheet of {made.character} (seed {made.seed}): {made.png} and {made.pdf}"]
    lines += [f"  {p.label}: generation #{p.generation.id}" for p in made.panels]
    lines.append(f"add a panel back as a reference: character add-refs {made.character} --from-generation ID --view VIEW")
    out.emit(made.to_json(), "\n".join(lines))
