"""`scene ...`: compose characters into one image from a scene JSON file, from a terminal."""

from __future__ import annotations

import json
from pathlib import Path

from cli.generate_commands import ProgressBar, add_engine_options, describe_scores
from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.records import timestamp
from core.catalog.service import Catalog
from core.scene.model import Scene, SceneError
from storage.errors import LibraryError


def register(tree: CommandTree) -> None:
    scenes = tree.group("scene", "compose characters into one image: render, save, load, reopen scenes")
    p = tree.action(scenes, "render", "render a scene (a JSON file or a saved scene's name)", scene_render)
    p.add_argument("scene", metavar="FILE.json|NAME")
    p.add_argument("--project", metavar="P", help="the project of a saved scene")
    p.add_argument("--seed", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--best-of", type=int, metavar="N", help="render N seeds, keep them all, mark the most consistent one")
    p.add_argument("--debug-dir", metavar="DIR", help="also write the compiled control image, masks and regional prompts here")
    add_engine_options(p)
    p = tree.action(scenes, "compile", "write a scene's control image, masks and regional prompts, without rendering", scene_compile)
    p.add_argument("scene", metavar="FILE.json|NAME")
    p.add_argument("--project", metavar="P")
    p.add_argument("--debug-dir", metavar="DIR", required=True)
    p = tree.action(scenes, "save", "save a scene file into the library", scene_save)
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--project", metavar="P", required=True)
    p.add_argument("--name", metavar="N", help="default: the scene's own name, else the file name")
    p = tree.action(scenes, "load", "write a saved scene out as a JSON file", scene_load)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--project", metavar="P")
    p.add_argument("--out", metavar="FILE.json", required=True)
    p = tree.action(scenes, "list", "list saved scenes", scene_list)
    p.add_argument("--project", metavar="P")
    p = tree.action(scenes, "from-image", "reopen the scene an image was rendered from", scene_from_image)
    p.add_argument("image", metavar="PNG")
    p.add_argument("--out", metavar="FILE.json", required=True)


def read_scene(catalog: Catalog, reference: str, project: str | None) -> tuple[Scene, int | None]:
    """A scene from a file path, else from the library by name; with its library id if saved."""
    path = Path(reference)
    try:
        if path.suffix.lower() == ".json" or path.exists():
            return Scene.load(path), None
        from storage.scenes import find_scene

        with catalog.library.db.reading() as session:
            saved = find_scene(session, reference, project)
            return Scene.from_json(saved.data), saved.id
    except SceneError as exc:
        raise LibraryError(str(exc)) from None


def scene_render(catalog: Catalog, args, out: Output) -> None:
    from core.engine.pipeline_cache import MemoryOptions
    from core.generation.service import GenerationService
    from core.scene.render import SceneRenderer

    scene, scene_id = read_scene(catalog, args.scene, args.project)
    memory = MemoryOptions(args.attention_slicing, args.vae_slicing, args.vae_tiling, args.cpu_offload)
    service = GenerationService(catalog.library, args.device, args.precision, memory, args.memory_budget)
    bar = ProgressBar(enabled=not out.json and _is_terminal())
    records = SceneRenderer(catalog.library, service).render(
        scene,
        seed=args.seed,
        count=args.count,
        debug_dir=Path(args.debug_dir) if args.debug_dir else None,
        scene_id=scene_id,
        progress=bar.update,
        best_of=args.best_of,
    )
    bar.finish()
    lines = [f"#{r.id}  seed {r.seed}  {r.width}x{r.height}  {describe_scores(r)}{'  BEST' if r.best else ''}  {r.path}" for r in records]
    lines += [f"warning: #{r.id}: {w}" for r in records for w in r.warnings]
    if args.debug_dir:
        lines.append(f"compiled control image, masks and regional prompts in {args.debug_dir}")
    out.emit([r.to_json() for r in records], "\n".join(lines))


def scene_compile(catalog: Catalog, args, out: Output) -> None:
    import numpy as np

    from core.pose.presets import PresetLibrary
    from core.scene.characters import trigger_words
    from core.scene.compile import compile_scene

    scene, _ = read_scene(catalog, args.scene, args.project)
    try:
        compiled = compile_scene(scene, PresetLibrary(), trigger_words(catalog.library, scene))
    except SceneError as exc:
        raise LibraryError(str(exc)) from None
    written = compiled.write_debug(Path(args.debug_dir))
    regions = [
        {"character": c.placement.character, "prompt": c.prompt, "mask_pixels": int(np.count_nonzero(np.asarray(c.mask)))}
        for c in compiled.placements
    ]
    out.emit({"files": [str(p) for p in written], "regions": regions}, "\n".join(str(p) for p in written))


def scene_save(catalog: Catalog, args, out: Output) -> None:
    from storage.scenes import save_scene

    scene, _ = read_scene(catalog, args.file, None)
    name = args.name or scene.name or Path(args.file).stem
    with catalog.library.db.writing() as session:
        saved, created = save_scene(session, args.project, name, scene.to_json())
        data = {"id": saved.id, "name": saved.name, "project": args.project, "created": created}
    out.emit(data, f"{'Saved' if created else 'Updated'} scene '{name}' in '{args.project}' (id {data['id']})")


def scene_load(catalog: Catalog, args, out: Output) -> None:
    scene, scene_id = read_scene(catalog, args.name, args.project)
    scene.save(args.out)
    out.emit({"id": scene_id, "file": str(Path(args.out).resolve())}, f"Wrote scene '{args.name}' to {args.out}")


def scene_list(catalog: Catalog, args, out: Output) -> None:
    from storage.scenes import list_scenes

    with catalog.library.db.reading() as session:
        rows = [
            {
                "id": s.id,
                "name": s.name,
                "project": project,
                "placements": len(s.data.get("placements", [])),
                "updated_at": timestamp(s.updated_at),
            }
            for s, project in list_scenes(session, args.project)
        ]
    text = table(
        ("SCENE", "PROJECT", "PLACEMENTS", "UPDATED"),
        [(r["name"], r["project"], str(r["placements"]), r["updated_at"]) for r in rows],
        empty="No scenes yet.",
    )
    out.emit(rows, text)


def scene_from_image(catalog: Catalog, args, out: Output) -> None:
    from core.scene.render import scene_from_png

    scene = scene_from_png(args.image)
    scene.save(args.out)
    out.emit(json.loads(scene.dumps()), f"Wrote the scene of {args.image} to {args.out} (seed {scene.seed})")


def _is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()
