"""Deleting moves to the trash; restore brings back; purge frees only what nothing uses."""

from __future__ import annotations

import pytest

from storage.errors import Conflict, NotFound
from tests import image_corpus


@pytest.fixture
def two_characters_sharing_a_file(catalog, tmp_path):
    catalog.create_project("P")
    catalog.create_character("Aria", "P")
    catalog.create_character("Kael", "P")
    shared = image_corpus.save(image_corpus.gradient(seed=1), tmp_path / "shared.png")
    own = image_corpus.save(image_corpus.gradient(seed=2), tmp_path / "own.png")
    catalog.add_references("Aria", [shared, own])
    catalog.add_references("Kael", [shared])
    return catalog


def stored_pngs(library):
    return sorted(p.name for p in (library.root / "files").rglob("*.png"))


def test_deleted_character_leaves_listings_and_restores_with_references(two_characters_sharing_a_file):
    catalog = two_characters_sharing_a_file
    catalog.delete_character("Aria")
    assert [c.name for c in catalog.list_characters()] == ["Kael"]
    with pytest.raises(NotFound):
        catalog.show_character("Aria")
    assert [(e["kind"], e["name"]) for e in catalog.list_trash()] == [("character", "Aria")]
    restored = catalog.restore_character("Aria")
    assert restored.reference_count == 2
    assert catalog.list_trash() == []


def test_purge_keeps_files_another_row_still_points_at(two_characters_sharing_a_file, library):
    catalog = two_characters_sharing_a_file
    assert len(stored_pngs(library)) == 2
    catalog.delete_character("Aria")
    report = catalog.purge_trash()
    assert report["characters"] == 1 and report["files_removed"] == 1
    assert len(stored_pngs(library)) == 1  # the shared file stays for Kael
    kael = catalog.show_character("Kael")
    assert (library.root / kael.references[0].file).exists()
    with pytest.raises(NotFound):
        catalog.restore_character("Aria")


def test_deleted_project_hides_its_characters_and_restores_them(two_characters_sharing_a_file):
    catalog = two_characters_sharing_a_file
    catalog.delete_project("P")
    assert catalog.list_projects() == [] and catalog.list_characters() == []
    catalog.restore_project("P")
    assert [c.name for c in catalog.list_characters("P")] == ["Aria", "Kael"]


def test_purging_a_project_removes_all_its_files(two_characters_sharing_a_file, library):
    catalog = two_characters_sharing_a_file
    catalog.delete_project("P")
    report = catalog.purge_trash()
    assert (report["projects"], report["files_removed"]) == (1, 2)
    assert stored_pngs(library) == []


def test_reference_delete_and_restore(two_characters_sharing_a_file):
    catalog = two_characters_sharing_a_file
    ref = catalog.show_character("Aria").references[1]
    catalog.delete_reference(ref.id)
    assert catalog.show_character("Aria").reference_count == 1
    catalog.restore_reference(ref.id)
    assert catalog.show_character("Aria").reference_count == 2


def test_restore_refuses_when_the_name_was_taken_meanwhile(catalog):
    catalog.create_project("P")
    catalog.create_character("Aria", "P", notes="the first")
    catalog.delete_character("Aria")
    catalog.create_character("Aria", "P", notes="the second")
    with pytest.raises(Conflict, match="has another character of that name now"):
        catalog.restore_character("Aria")


def test_restoring_a_character_of_a_trashed_project_says_what_to_do(catalog):
    catalog.create_project("P")
    catalog.create_character("Aria", "P")
    catalog.delete_character("Aria")
    catalog.delete_project("P")
    with pytest.raises(Conflict, match="restore it first with `project restore`"):
        catalog.restore_character("Aria")


def test_purge_counts_every_file_it_takes_off_the_disk(two_characters_sharing_a_file, library):
    """Files no row knows (left by a crash between the file and its row) are removed too, and
    said: the count is what left the disk, not only the rows."""
    import os
    import time

    catalog = two_characters_sharing_a_file
    strays = []
    for n in range(5):
        stray = library.root / "files" / "ee" / f"{'e' * 63}{n}.png"
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"left by a crash")
        old = time.time() - 2 * 3600  # older than a write in flight could be
        os.utime(stray, (old, old))
        strays.append(stray)
    report = catalog.purge_trash()
    assert report["files_removed"] == 5 and not any(s.exists() for s in strays)
    assert len(stored_pngs(library)) == 2  # the characters' own files stay


def test_a_saved_scene_keeps_its_background_through_a_purge(catalog, library, tmp_path):
    """A scene's background is copied into the library when the scene is saved, and the saved
    scene, which points at it only by path, keeps it when the trash is purged."""
    from core.scene.model import Scene
    from core.scene.saved import load_saved_scene, save_scene

    catalog.create_project("P")
    background = image_corpus.save(image_corpus.gradient(seed=3), tmp_path / "courtyard.png")
    save_scene(library, "P", "duel", Scene(size=(128, 64), prompt="a duel", background=str(background)))
    scene, _ = load_saved_scene(library, "duel", "P")
    assert scene.background.startswith("files/") and scene.confined_to_library() == scene
    catalog.purge_trash()
    assert (library.root / scene.background).exists()
