"""`project`, `character`, `reference` and `trash` commands: the library from a terminal."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.records import CharacterRecord, ReferenceRecord
from core.catalog.service import Catalog
from storage.errors import LibraryError
from storage.references import VIEWS, ReferenceTags


def register(tree: CommandTree) -> None:
    projects = tree.group("project", "create, list, delete and restore projects")
    p = tree.action(projects, "create", "create a project", project_create)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--notes", default="")
    tree.action(projects, "list", "list projects", project_list)
    p = tree.action(projects, "delete", "move a project (and its characters) to the trash", project_delete)
    p.add_argument("name", metavar="NAME")
    p = tree.action(projects, "restore", "bring a project back from the trash", project_restore)
    p.add_argument("name", metavar="NAME")

    characters = tree.group("character", "create, list, show, delete characters and add their references")
    p = tree.action(characters, "create", "create a character in a project", character_create)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--project", required=True, metavar="P")
    p.add_argument("--trigger", metavar="WORD", help="the token that calls this character in prompts and LoRAs")
    p.add_argument("--notes", default="", metavar="TEXT")
    p = tree.action(characters, "list", "list characters", character_list)
    p.add_argument("--project", metavar="P")
    for name, help, handler in (
        ("show", "show a character and its references", character_show),
        ("delete", "move a character to the trash", character_delete),
        ("restore", "bring a character back from the trash", character_restore),
    ):
        p = tree.action(characters, name, help, handler)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--project", metavar="P", help="needed when several projects have a character of this name")
    p = tree.action(
        characters, "add-refs", "import image files (or generated images) as reference images of a character", character_add_refs
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("files", metavar="FILE", nargs="*")
    p.add_argument(
        "--from-generation", type=int, action="append", default=[], metavar="ID", help="a generated image (see `generation list`)"
    )
    p.add_argument("--project", metavar="P")
    add_tag_options(p)
    p.add_argument("--skip-bad", action="store_true", help="import the good files and list the bad ones")

    p = tree.action(
        characters, "analyse-faces", "find the faces in a character's references with the registered face models", character_analyse_faces
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--project", metavar="P")

    references = tree.group("reference", "tag, delete and restore single reference images")
    p = tree.action(references, "pick-face", "say which face in a reference is the character's", reference_pick_face)
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("face", type=int, metavar="N", help="the face's number, from 0 (see `character show`)")
    p = tree.action(references, "tag", "change a reference's tags", reference_tag)
    p.add_argument("id", type=int, metavar="ID")
    add_tag_options(p)
    p.add_argument("--caption", metavar="TEXT", help="training caption for this image")
    for name, help, handler in (
        ("delete", "move a reference image to the trash", reference_delete),
        ("restore", "bring a reference image back from the trash", reference_restore),
    ):
        p = tree.action(references, name, help, handler)
        p.add_argument("id", type=int, metavar="ID")

    trash = tree.group("trash", "see and empty the trash")
    tree.action(trash, "list", "list what is in the trash", trash_list)
    tree.action(trash, "purge", "delete the trash for good, and the files nothing else uses", trash_purge)


def add_tag_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", metavar="V", help=f"one of: {', '.join(VIEWS)}")
    parser.add_argument("--expression", metavar="E", help="e.g. neutral, smiling, angry")
    parser.add_argument("--outfit", metavar="O", help="e.g. armor, casual")
    parser.add_argument("--crop", metavar="X,Y,W,H", type=crop_box, help="the part of the image that shows the character")


def crop_box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"crop box must be four integers X,Y,W,H, got '{text}'") from None
    return x, y, w, h


def tags_from(args) -> ReferenceTags:
    return ReferenceTags(
        view=args.view,
        expression=args.expression,
        outfit=args.outfit,
        caption=getattr(args, "caption", None),
        crop_box=args.crop,
    )


# -- projects -----------------------------------------------------------------------------
def project_create(catalog: Catalog, args, out: Output) -> None:
    project = catalog.create_project(args.name, args.notes)
    out.emit(project.to_json(), f"Created project '{project.name}' (id {project.id})")


def project_list(catalog: Catalog, args, out: Output) -> None:
    projects = catalog.list_projects()
    rows = [(p.name, str(p.characters), p.created_at or "") for p in projects]
    out.emit([p.to_json() for p in projects], table(("PROJECT", "CHARACTERS", "CREATED"), rows, empty="No projects yet."))


def project_delete(catalog: Catalog, args, out: Output) -> None:
    project = catalog.delete_project(args.name)
    out.emit(project.to_json(), f"Moved project '{project.name}' to the trash (`project restore` brings it back)")


def project_restore(catalog: Catalog, args, out: Output) -> None:
    project = catalog.restore_project(args.name)
    out.emit(project.to_json(), f"Restored project '{project.name}'")


# -- characters ---------------------------------------------------------------------------
def character_create(catalog: Catalog, args, out: Output) -> None:
    character = catalog.create_character(args.name, args.project, args.trigger, args.notes)
    out.emit(character.to_json(), f"Created character '{character.name}' in '{character.project}' (id {character.id})")


def character_list(catalog: Catalog, args, out: Output) -> None:
    characters = catalog.list_characters(args.project)
    rows = [(c.name, c.project, c.trigger_word or "", str(c.reference_count)) for c in characters]
    text = table(("CHARACTER", "PROJECT", "TRIGGER", "REFERENCES"), rows, empty="No characters yet.")
    out.emit([c.to_json() for c in characters], text)


def character_show(catalog: Catalog, args, out: Output) -> None:
    character = catalog.show_character(args.name, args.project)
    out.emit(character.to_json(), describe_character(character))


def character_delete(catalog: Catalog, args, out: Output) -> None:
    character = catalog.delete_character(args.name, args.project)
    out.emit(character.to_json(), f"Moved character '{character.name}' to the trash (`character restore` brings it back)")


def character_restore(catalog: Catalog, args, out: Output) -> None:
    character = catalog.restore_character(args.name, args.project)
    out.emit(character.to_json(), f"Restored character '{character.name}' with {character.reference_count} references")


def character_add_refs(catalog: Catalog, args, out: Output) -> None:
    if not args.files and not args.from_generation:
        raise LibraryError("name image files, or generated images with --from-generation ID")
    report = catalog.add_references(args.name, args.files, tags_from(args), args.project, args.skip_bad, args.from_generation)
    if not out.json:
        for refusal in report.refused:
            print(f"skipped {refusal.path}: {refusal.reason}", file=sys.stderr)
    counts = {outcome: sum(1 for r in report.imported if r.outcome == outcome) for outcome in ("added", "linked", "duplicate")}
    summary = f"Imported {counts['added'] + counts['linked']} reference(s) into '{report.character}'"
    details = []
    if counts["linked"]:
        details.append(f"{counts['linked']} already in the library, linked not copied")
    if counts["duplicate"]:
        details.append(f"{counts['duplicate']} already a reference of this character")
    if report.refused:
        details.append(f"{len(report.refused)} bad file(s) skipped")
    if details:
        summary += " (" + "; ".join(details) + ")"
    lines = [summary] + [f"  #{r.id}  {r.original_name}  {r.width}x{r.height}  {r.outcome}" for r in report.imported]
    out.emit(report.to_json(), "\n".join(lines))


def describe_character(c: CharacterRecord) -> str:
    lines = [
        f"{c.name}  (project {c.project}, id {c.id})",
        f"  trigger word: {c.trigger_word or '-'}",
        f"  notes: {c.notes or '-'}",
        f"  created {c.created_at}, updated {c.updated_at}",
        f"  references: {c.reference_count}",
    ]
    lines += ["    " + describe_reference(r) for r in c.references]
    if c.lora_versions:
        lines.append(f"  LoRA versions: {len(c.lora_versions)}")
        lines += [f"    v{v['version']}  {v['name']}  ({v['trained_as']})  {v['path']}" for v in c.lora_versions]
    return "\n".join(lines)


def describe_reference(r: ReferenceRecord) -> str:
    tags = ", ".join(f"{k}={v}" for k, v in (("view", r.view), ("expression", r.expression), ("outfit", r.outfit)) if v)
    crop = f" crop={','.join(map(str, r.crop_box))}" if r.crop_box else ""
    flag = f"  ! {r.face_flag}" if r.face_flag else ""
    return f"#{r.id}  {r.original_name}  {r.width}x{r.height}  [{tags or 'untagged'}]{crop}  {r.file}{flag}"


def character_analyse_faces(catalog: Catalog, args, out: Output) -> None:
    from core.identity.face_analysis import FaceAnalyzer

    analyzer = FaceAnalyzer(catalog.library)
    analysed = analyzer.reference_faces(args.name, args.project)
    character = catalog.show_character(args.name, args.project)
    data: list[dict[str, Any]] = [
        {"reference": r.id, "faces": r.faces, "face_flag": r.face_flag, "boxes": [list(f.box) for f in a.faces]}
        for r, a in zip(character.references, analysed)
    ]
    lines = [f"{character.name}: {len(data)} reference(s) analysed with '{analyzer.model.name}' ({analyzer.runs} new)"]
    for d in data:
        lines.append(f"  #{d['reference']}: {d['faces']} face(s)" + (f"  ! {d['face_flag']}" if d["face_flag"] else ""))
        lines += [f"      face {i}: box {', '.join(f'{v:.0f}' for v in box)}" for i, box in enumerate(d["boxes"])]
    out.emit(data, "\n".join(lines))


def reference_pick_face(catalog: Catalog, args, out: Output) -> None:
    reference = catalog.pick_face(args.id, args.face)
    out.emit(reference.to_json(), f"Reference #{reference.id} of '{reference.character}': face {args.face} is the character's")


# -- references ---------------------------------------------------------------------------
def reference_tag(catalog: Catalog, args, out: Output) -> None:
    reference = catalog.tag_reference(args.id, tags_from(args))
    out.emit(reference.to_json(), describe_reference(reference))


def reference_delete(catalog: Catalog, args, out: Output) -> None:
    reference = catalog.delete_reference(args.id)
    out.emit(reference.to_json(), f"Moved reference #{reference.id} of '{reference.character}' to the trash")


def reference_restore(catalog: Catalog, args, out: Output) -> None:
    reference = catalog.restore_reference(args.id)
    out.emit(reference.to_json(), f"Restored reference #{reference.id} of '{reference.character}'")


# -- trash --------------------------------------------------------------------------------
def trash_list(catalog: Catalog, args, out: Output) -> None:
    entries = catalog.list_trash()
    rows = [(e["kind"], str(e["id"]), e["name"], e["project"] or "", e["deleted_at"]) for e in entries]
    out.emit(entries, table(("KIND", "ID", "NAME", "PROJECT", "DELETED"), rows, empty="The trash is empty."))


def trash_purge(catalog: Catalog, args, out: Output) -> None:
    report = catalog.purge_trash()
    text = (
        f"Purged {report['projects']} project(s), {report['characters']} character(s), "
        f"{report['references']} reference(s); removed {report['files_removed']} file(s), "
        f"{report['bytes_freed'] / 1024:.0f} KiB freed"
    )
    out.emit(report, text)
