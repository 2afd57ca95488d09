"""Importing reference images into the library: all or nothing, linked duplicates, tags."""

from __future__ import annotations

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.catalog.service import ImportRefused
from storage.errors import Conflict, NotFound
from storage.references import ReferenceTags
from storage.schema import ReferenceImage, StoredFile
from tests import image_corpus


@pytest.fixture
def aria(catalog):
    catalog.create_project("Fight Club")
    catalog.create_character("Aria", "Fight Club", trigger_word="ariaknight")
    return catalog


def snapshot(library):
    """Everything a refused import must leave exactly as it was."""
    with library.db.reading() as session:
        rows = (
            session.scalar(select(func.count()).select_from(ReferenceImage)),
            session.scalar(select(func.count()).select_from(StoredFile)),
        )
    files = sorted(p.relative_to(library.root).as_posix() for p in library.root.rglob("*") if p.is_file() and "sqlite" not in p.name)
    return rows, files


def good_images(folder, count=3):
    folder.mkdir(exist_ok=True)
    return [image_corpus.save(image_corpus.gradient(seed=i), folder / f"good{i}.png") for i in range(count)]


def test_import_stores_png_by_sha256_with_tags(aria, library, tmp_path):
    [path] = good_images(tmp_path / "in", 1)
    report = aria.add_references("Aria", [path], ReferenceTags(view="3/4", expression="smiling", outfit="armour", crop_box=(1, 2, 30, 20)))
    [ref] = report.imported
    assert ref.outcome == "added"
    assert ref.file == f"files/{ref.sha256[:2]}/{ref.sha256}.png"
    assert (library.root / ref.file).exists()
    assert (ref.view, ref.expression, ref.outfit, ref.crop_box) == ("three-quarter", "smiling", "armour", [1, 2, 30, 20])
    assert (ref.width, ref.height) == (48, 32)
    shown = aria.show_character("Aria")
    assert [r.id for r in shown.references] == [ref.id]


def test_batch_with_a_bad_file_changes_nothing(aria, library, tmp_path):
    good = good_images(tmp_path / "in")
    bad = image_corpus.bad_files(tmp_path / "bad")
    aria.add_references("Aria", good[:1])  # something already there, to see it kept intact
    before = snapshot(library)
    with pytest.raises(ImportRefused) as refused:
        aria.add_references("Aria", good[1:] + [bad["truncated"], bad["empty"]])
    lines = str(refused.value).splitlines()
    assert lines[0] == f"refused {bad['truncated']}: truncated image: the file ends before its image data does"
    assert lines[1] == f"refused {bad['empty']}: empty file (0 bytes)"
    assert "--skip-bad imports the 2 good ones" in lines[2]
    assert snapshot(library) == before


def test_skip_bad_imports_the_good_ones_and_lists_the_bad(aria, tmp_path):
    good = good_images(tmp_path / "in")
    bad = image_corpus.bad_files(tmp_path / "bad")
    report = aria.add_references("Aria", good + list(bad.values()), skip_bad=True)
    assert len(report.imported) == 3
    assert sorted(r.path for r in report.refused) == sorted(str(p) for p in bad.values())
    assert aria.show_character("Aria").reference_count == 3


def test_same_pixels_are_linked_not_stored_twice(aria, library, tmp_path):
    aria.create_character("Kael", "Fight Club")
    picture = image_corpus.gradient(seed=7)
    png = image_corpus.save(picture, tmp_path / "kael.png")
    bmp = image_corpus.save(picture, tmp_path / "kael-copy.bmp")
    first = aria.add_references("Aria", [png]).imported[0]
    second = aria.add_references("Kael", [bmp]).imported[0]
    assert first.outcome == "added" and second.outcome == "linked"
    assert first.file == second.file
    again = aria.add_references("Aria", [bmp]).imported[0]
    assert again.outcome == "duplicate" and again.id == first.id
    assert aria.show_character("Aria").reference_count == 1
    assert len(list((library.root / "files").rglob("*.png"))) == 1


def test_a_failure_while_writing_rows_removes_the_files_it_wrote(aria, library, tmp_path, monkeypatch):
    good = good_images(tmp_path / "in")
    before = snapshot(library)
    import storage.references as references

    real_add = references.add_reference
    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(references, "add_reference", fail_on_third)
    with pytest.raises(OSError):
        aria.add_references("Aria", good)
    assert snapshot(library) == before


def test_bad_view_tag_and_crop_box_are_refused(aria, tmp_path):
    [path] = good_images(tmp_path / "in", 1)
    with pytest.raises(Conflict, match="unknown view 'top'; use one of: front, three-quarter, side, back"):
        aria.add_references("Aria", [path], ReferenceTags(view="top"))
    with pytest.raises(Conflict, match="does not fit inside good0.png"):
        aria.add_references("Aria", [path], ReferenceTags(crop_box=(40, 0, 20, 20)))
    assert aria.show_character("Aria").reference_count == 0


def test_unknown_character_is_refused_before_reading_files(aria, tmp_path):
    with pytest.raises(NotFound, match="no character named 'Nobody'"):
        aria.add_references("Nobody", [tmp_path / "whatever.png"])


def test_retagging_a_reference(aria, tmp_path):
    [path] = good_images(tmp_path / "in", 1)
    ref = aria.add_references("Aria", [path]).imported[0]
    tagged = aria.tag_reference(ref.id, ReferenceTags(view="back", caption="ariaknight from behind"))
    assert (tagged.view, tagged.caption) == ("back", "ariaknight from behind")


def test_character_names_unique_within_a_project_only(catalog):
    catalog.create_project("A")
    catalog.create_project("B")
    catalog.create_character("Zed", "A")
    catalog.create_character("Zed", "B")
    with pytest.raises(Conflict, match="project 'A' already has a character named 'Zed'"):
        catalog.create_character("Zed", "A")
    with pytest.raises(Conflict, match="several characters are named 'Zed'.*add --project"):
        catalog.show_character("Zed")
    assert catalog.show_character("Zed", project="B").project == "B"


def test_normalised_file_in_store_is_rgb_png(aria, library, tmp_path):
    path = image_corpus.save(Image.new("CMYK", (20, 20), (0, 0, 0, 0)), tmp_path / "cmyk.jpg")
    ref = aria.add_references("Aria", [path]).imported[0]
    stored = Image.open(library.root / ref.file)
    assert (stored.format, stored.mode) == ("PNG", "RGB")
