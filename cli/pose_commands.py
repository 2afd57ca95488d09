"""`pose` commands: browse the preset library, draw control images, mirror and extract poses.

A POSE argument is a preset name ("guard stance", any case, or its slug) or an OpenPose JSON
file, e.g. one saved by the A1111 OpenPose editor or by `pose extract`.
"""

from __future__ import annotations

import re
from pathlib import Path

from cli.output import Output, table
from cli.parser import CommandTree
from core.catalog.service import Catalog
from core.pose.openpose_json import MAX_CANVAS, PoseFormatError
from core.pose.presets import PosePreset, PresetLibrary
from core.pose.skeleton import PoseSkeleton
from storage.errors import LibraryError

MAX_SIDE = MAX_CANVAS


def register(tree: CommandTree) -> None:
    poses = tree.group("pose", "pose presets and OpenPose files: list, show, render, mirror, extract")
    p = tree.action(poses, "list", "list the pose presets", pose_list)
    p.add_argument("--tag", metavar="T", help="only presets with this tag, e.g. fight, turnaround, two-person")
    p.add_argument("--people", type=int, metavar="N", help="only presets with N people")
    p = tree.action(poses, "show", "show a preset (--json prints its OpenPose document)", pose_show)
    p.add_argument("pose", metavar="NAME|FILE.json")
    p = tree.action(poses, "render", "draw a pose as an OpenPose control image", pose_render)
    p.add_argument("pose", metavar="NAME|FILE.json")
    p.add_argument("--size", metavar="WxH", help="output size, e.g. 512x768 (default: the pose's canvas)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--no-hands", action="store_true", help="leave out hand keypoints")
    p.add_argument("--no-face", action="store_true", help="leave out face keypoints")
    p = tree.action(poses, "mirror", "write the pose mirrored left to right as OpenPose JSON", pose_mirror)
    p.add_argument("pose", metavar="NAME|FILE.json")
    p.add_argument("--out", required=True, metavar="FILE.json")
    p = tree.action(poses, "extract", "detect the people's poses in an image (needs a pose-estimator model)", pose_extract)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--out", required=True, metavar="FILE.json")


def image_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT in pixels; a bad size is refused with one line (exit 1)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise LibraryError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 512x768; got '{text}'")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise LibraryError(f"--size must be between 1x1 and {MAX_SIDE}x{MAX_SIDE} pixels; got '{text}'")
    return width, height


# -- reading a POSE argument -------------------------------------------------------------------
def is_pose_file(text: str) -> bool:
    return text.lower().endswith(".json") or Path(text).is_file()


def load_pose(text: str, presets: PresetLibrary | None = None) -> tuple[PoseSkeleton, PosePreset | None]:
    """The skeleton named by a POSE argument, and its preset when it is one."""
    if is_pose_file(text):
        path = Path(text)
        if not path.is_file():
            raise LibraryError(f"no such pose file: {path}")
        try:
            return PoseSkeleton.load(path), None
        except PoseFormatError as exc:
            raise LibraryError(f"cannot read pose: {exc}") from None
        except OSError as exc:
            raise LibraryError(f"cannot read {path}: {exc.strerror or exc}") from None
    preset = (presets or PresetLibrary()).get(text)
    return preset.skeleton, preset


def write_output(path: Path, write) -> None:
    if not path.parent.is_dir():
        raise LibraryError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        write(path)
    except OSError as exc:
        raise LibraryError(f"cannot write {path}: {exc.strerror or exc}") from None


def fit_to(skeleton: PoseSkeleton, width: int, height: int) -> PoseSkeleton:
    """The pose on a width x height canvas: scaled as a whole, centred, never stretched."""
    source_w, source_h = skeleton.canvas_width, skeleton.canvas_height
    if width * source_h == height * source_w:
        return skeleton  # the same shape: the renderer maps canvas to output exactly
    factor = min(width / source_w, height / source_h)
    dx, dy = (width - source_w * factor) / 2, (height - source_h * factor) / 2
    people = tuple(p.scaled(factor).moved(dx, dy) for p in skeleton.people)
    return PoseSkeleton(people=people, canvas_width=width, canvas_height=height)


# -- commands ----------------------------------------------------------------------------------
def pose_list(catalog: Catalog, args, out: Output) -> None:
    presets = PresetLibrary().list(tag=args.tag, people=args.people)
    rows = [(p.name, str(p.people), ", ".join(p.tags)) for p in presets]
    empty = "No pose presets match." if (args.tag or args.people) else "No pose presets found."
    out.emit([p.to_json() for p in presets], table(("NAME", "PEOPLE", "TAGS"), rows, empty=empty))


def pose_show(catalog: Catalog, args, out: Output) -> None:
    skeleton, preset = load_pose(args.pose)
    lines = []
    if preset is not None:
        lines += [
            f"{preset.name}  ({preset.slug})",
            f"  {preset.description}" if preset.description else None,
            f"  tags: {', '.join(preset.tags) or '-'}",
            f"  file: {preset.path}",
            f"  thumbnail: {preset.thumbnail}",
        ]
    else:
        lines.append(str(Path(args.pose)))
    lines.append(f"  canvas: {skeleton.canvas_width}x{skeleton.canvas_height}, {len(skeleton.people)} person(s)")
    for index, person in enumerate(skeleton.people):
        seen = sum(1 for p in person.body if p.present)
        extras = [name for name in ("left_hand", "right_hand", "face") if getattr(person, name) is not None]
        box = person.bounding_box()
        where = f", box {box[0]:.0f},{box[1]:.0f} {box[2]:.0f}x{box[3]:.0f}" if box else ""
        lines.append(f"  #{index}: {seen}/18 body keypoints{where}" + (f", with {', '.join(extras)}" if extras else ""))
    document = skeleton.to_openpose_json()
    if preset is not None:
        document = {"name": preset.name, "tags": list(preset.tags), "description": preset.description} | document
    out.emit(document, "\n".join(line for line in lines if line is not None))


def pose_render(catalog: Catalog, args, out: Output) -> None:
    from core.pose.render import render_pose

    size = image_size(args.size) if args.size is not None else None
    skeleton, _ = load_pose(args.pose)
    width, height = size or (skeleton.canvas_width, skeleton.canvas_height)
    image = render_pose(fit_to(skeleton, width, height), size=(width, height), hands=not args.no_hands, face=not args.no_face)
    path = Path(args.out)
    write_output(path, lambda p: image.save(p, format="PNG"))
    data = {"path": str(path), "width": width, "height": height, "people": len(skeleton.people)}
    out.emit(data, f"Wrote {path} ({width}x{height}, {len(skeleton.people)} person(s))")


def pose_mirror(catalog: Catalog, args, out: Output) -> None:
    skeleton, _ = load_pose(args.pose)
    mirrored = skeleton.mirrored()
    path = Path(args.out)
    write_output(path, mirrored.save)
    data = {"path": str(path), "people": len(mirrored.people)}
    out.emit(data, f"Wrote {path} (mirrored, {len(mirrored.people)} person(s))")


def pose_extract(catalog: Catalog, args, out: Output) -> None:
    from core.pose.extract import extract_poses

    image = Path(args.image)
    if not image.is_file():
        raise LibraryError(f"no such image: {image}")
    skeleton = extract_poses(catalog.library, image)
    path = Path(args.out)
    write_output(path, skeleton.save)
    data = {"path": str(path), "people": len(skeleton.people), "width": skeleton.canvas_width, "height": skeleton.canvas_height}
    out.emit(data, f"Found {len(skeleton.people)} person(s) in {image.name}; wrote {path}")
