"""`model` commands: register the weights on disk and choose the defaults generation uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.models.kinds import CONTROL_KINDS, CONTROL_TYPES, FAMILIES, FAMILY_NAMES, KIND_NAMES, KINDS, article
from core.models.registry import ModelRecord, ModelRegistry


def register(tree: CommandTree) -> None:
    models = tree.group("model", "register checkpoints, LoRAs, ControlNets, T2I-Adapters, IP-Adapters and image encoders")
    p = tree.action(models, "add", "register a weights file or folder; what it is is read from the file", model_add)
    p.add_argument("path", metavar="PATH")
    p.add_argument("--name", metavar="N", help="default: the file or folder name")
    p.add_argument("--kind", choices=("auto", *KINDS), default="auto", help="refuse the file unless it is this kind")
    p.add_argument(
        "--control-type", choices=CONTROL_TYPES, metavar="TYPE", help=f"for a ControlNet or T2I-Adapter: {', '.join(CONTROL_TYPES)}"
    )
    p.add_argument("--allow-pickle", action="store_true", help="accept .ckpt/.pt/.bin, loaded with torch.load(weights_only=True)")
    p.add_argument("--config", metavar="DIR", help="for a single-file checkpoint or ControlNet: the diffusers config folder it loads with")
    p = tree.action(models, "list", "list registered models", model_list)
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--family", choices=FAMILIES)
    for name, help, handler in (
        ("show", "show a registered model and what was read from it", model_show),
        ("remove", "forget a model (its file is left alone)", model_remove),
        ("default", "make a model the default of its kind and family", model_default),
    ):
        p = tree.action(models, name, help, handler)
        p.add_argument("name", metavar="NAME")
    p = tree.action(models, "set-control-type", "say what a ControlNet's or T2I-Adapter's control image is", model_set_control_type)
    p.add_argument("name", metavar="NAME")
    p.add_argument("control_type", choices=CONTROL_TYPES, metavar="TYPE", help=", ".join(CONTROL_TYPES))


def model_add(catalog: Catalog, args, out: Output) -> None:
    record = ModelRegistry(catalog.library).add(
        args.path,
        name=args.name,
        kind=args.kind,
        control_type=args.control_type,
        allow_pickle=args.allow_pickle,
        config_dir=args.config,
    )
    assert record.sha256 is not None  # add() hashes what it registers
    text = f"Registered {describe(record)} as '{record.name}' ({record.details.get('format')}, sha256 {record.sha256[:12]}...)"
    if record.details.get("union"):
        text += f"\n  a union ControlNet ({', '.join(record.details.get('control_modes', []))}): `--control {record.name}:TYPE=IMAGE`"
    elif record.kind in CONTROL_KINDS and record.control_type is None:
        text += "\n  its control type is unknown: set it with `model set-control-type NAME TYPE`"
    out.emit(record.to_json(), text)


def model_list(catalog: Catalog, args, out: Output) -> None:
    records = ModelRegistry(catalog.library).list(args.kind, args.family)
    rows = [
        (r.name, r.kind, r.family or "?", r.control_type or "", "yes" if r.is_default else "", size_text(r.size), r.path) for r in records
    ]
    text = table(("NAME", "KIND", "FAMILY", "CONTROL", "DEFAULT", "SIZE", "PATH"), rows, empty="No models registered.")
    out.emit([r.to_json() for r in records], text)


def model_show(catalog: Catalog, args, out: Output) -> None:
    registry = ModelRegistry(catalog.library)
    record = registry.get(args.name)
    extra = []
    if record.kind == "ip-adapter" and record.details.get("needs_image_encoder"):
        encoder = registry.image_encoder_for(record)
        extra.append(("image encoder", str(encoder or "none found (register one: `model add DIR --kind image-encoder`)")))
    out.emit(record.to_json(), show_text(record, extra))


def model_remove(catalog: Catalog, args, out: Output) -> None:
    record = ModelRegistry(catalog.library).remove(args.name)
    out.emit(record.to_json(), f"Forgot model '{record.name}'; the file {record.path} is untouched")


def model_default(catalog: Catalog, args, out: Output) -> None:
    record = ModelRegistry(catalog.library).set_default(args.name)
    out.emit(record.to_json(), f"'{record.name}' is now the default {describe(record)}")


def model_set_control_type(catalog: Catalog, args, out: Output) -> None:
    record = ModelRegistry(catalog.library).set_control_type(args.name, args.control_type)
    what = describe(record)
    out.emit(record.to_json(), f"'{record.name}' is now {article(what)} {what}")


def describe(r: ModelRecord) -> str:
    """'SDXL openpose ControlNet', 'SD 1.5 LoRA', 'image encoder'."""
    family = FAMILY_NAMES.get(r.family or "", "" if r.kind in ("image-encoder", "pose-estimator", "face-models") else "unknown-family")
    return " ".join(w for w in (family, r.control_type, KIND_NAMES[r.kind]) if w)


def size_text(size: int | None) -> str:
    if size is None:
        return "?"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return "?"


def plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def show_text(r: ModelRecord, extra: Sequence[tuple[str, str]] = ()) -> str:
    missing = "" if Path(r.path).exists() else "  (missing!)"
    fields = [
        ("name", r.name),
        ("kind", r.kind),
        ("family", r.family or "unknown"),
        ("format", r.details.get("format")),
        ("path", f"{r.path}{missing}"),
        ("size", size_text(r.size)),
        ("sha256", r.sha256 or "-"),
        ("control type", r.control_type if r.kind in CONTROL_KINDS else None),
        ("default", "yes" if r.is_default else "no"),
        ("character", r.character),
        ("version", r.version),
        ("registered", r.created_at),
        *extra,
    ]
    lines = [f"{key}: {value}" for key, value in fields if value is not None]
    lines.append("details:")
    lines += [f"  {key}: {plain(value)}" for key, value in r.details.items() if key != "format" and value is not None]
    return "\n".join(lines)
