"""The library window against a real library on disk, driven as a user would through its actions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

from core.catalog import Catalog
from core.demo_library import build_demo_library
from storage.library import open_library
from studio.library_window import LibraryWindow, TreeNode

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_catalog(tmp_path):
    library = open_library(tmp_path / "lib")
    catalog = Catalog(library)
    build_demo_library(catalog)
    yield catalog
    library.close()


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *rest: shown.append(text))
    return shown


@pytest.fixture
def window(qtbot, demo_catalog, tmp_path, warnings):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = LibraryWindow(demo_catalog, settings=settings)
    qtbot.addWidget(window)
    window.show()
    return window


def visible_tree(window: LibraryWindow) -> dict[str, list[str]]:
    tree = {}
    for i in range(window.tree.topLevelItemCount()):
        project = window.tree.topLevelItem(i)
        if project.isHidden():
            continue
        children = [project.child(j) for j in range(project.childCount())]
        tree[project.text(0)] = [c.text(0) for c in children if not c.isHidden()]
    return tree


def select(window: LibraryWindow, node: TreeNode) -> None:
    item = window.find_item(node)
    assert item is not None, node
    window.tree.setCurrentItem(item)


def answer_text(monkeypatch, text: str) -> None:
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (text, True))


def test_tree_shows_projects_and_characters(window, demo_catalog):
    assert visible_tree(window) == {"Demo": ["Aria", "Kael"]}
    assert window.windowTitle() == f"Character Studio — {demo_catalog.library.root}"


def test_selecting_a_character_shows_its_details_and_thumbnails(window):
    select(window, TreeNode("Aria", "Demo"))

    details = window.details
    assert details.title.text() == "Aria"
    assert details.trigger_word.text() == "ariaknight"
    assert details.notes.text() == "Red-haired knight in blue armour."
    grid = details.references
    captions = [grid.item(i).text() for i in range(grid.count())]
    assert captions == ["front", "three-quarter", "side", "back"]
    for i in range(grid.count()):
        icon_size = grid.item(i).icon().availableSizes()[0]
        assert 0 < max(icon_size.width(), icon_size.height()) <= 160


def test_selecting_a_project_shows_its_summary(window):
    select(window, TreeNode("Demo"))
    assert window.details.title.text() == "Demo"
    assert "2 characters" in window.details.subtitle.text()
    assert window.details.references.count() == 0


def test_search_filters_characters_by_name(window):
    window.search.setText("kae")
    assert visible_tree(window) == {"Demo": ["Kael"]}

    window.search.setText("nobody")
    assert visible_tree(window) == {}

    window.search.clear()
    assert visible_tree(window) == {"Demo": ["Aria", "Kael"]}


def test_search_hiding_the_selection_clears_the_details(window):
    select(window, TreeNode("Aria", "Demo"))
    window.search.setText("kael")
    assert window.current_node() is None
    assert window.details.references.count() == 0


def test_new_project_action_adds_it_to_the_tree(window, monkeypatch, warnings):
    answer_text(monkeypatch, "Side quests")
    window.new_project_action.trigger()

    assert visible_tree(window) == {"Demo": ["Aria", "Kael"], "Side quests": []}
    assert window.current_node() == TreeNode("Side quests")
    assert warnings == []


def test_new_character_goes_into_the_selected_project(window, monkeypatch, warnings):
    select(window, TreeNode("Kael", "Demo"))
    answer_text(monkeypatch, "Mira")
    window.new_character_action.trigger()

    assert visible_tree(window) == {"Demo": ["Aria", "Kael", "Mira"]}
    assert window.current_node() == TreeNode("Mira", "Demo")
    assert window.details.title.text() == "Mira"
    assert warnings == []


def test_refused_create_shows_a_warning_and_keeps_the_window(window, monkeypatch, warnings):
    answer_text(monkeypatch, "Demo")
    window.new_project_action.trigger()

    assert len(warnings) == 1
    assert "already exists" in warnings[0]
    assert visible_tree(window) == {"Demo": ["Aria", "Kael"]}

    answer_text(monkeypatch, "   ")
    window.new_project_action.trigger()
    assert len(warnings) == 2


def test_cancelled_dialog_changes_nothing(window, monkeypatch, warnings):
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("Ignored", False))
    window.new_project_action.trigger()
    assert visible_tree(window) == {"Demo": ["Aria", "Kael"]}
    assert warnings == []


def test_refresh_picks_up_changes_made_elsewhere_and_keeps_the_selection(window, demo_catalog):
    select(window, TreeNode("Kael", "Demo"))
    demo_catalog.create_character("Zed", "Demo")
    demo_catalog.create_project("Archive")

    window.refresh_action.trigger()

    assert visible_tree(window) == {"Archive": [], "Demo": ["Aria", "Kael", "Zed"]}
    assert window.current_node() == TreeNode("Kael", "Demo")


def test_character_deleted_elsewhere_warns_instead_of_crashing(window, demo_catalog, warnings):
    demo_catalog.delete_character("Aria", "Demo")
    select(window, TreeNode("Aria", "Demo"))  # the tree has not been refreshed yet

    assert len(warnings) == 1 and "Aria" in warnings[0]
    assert window.details.references.count() == 0


def test_layout_is_saved_and_restored(qtbot, demo_catalog, tmp_path):
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    first = LibraryWindow(demo_catalog, settings=settings)
    qtbot.addWidget(first)
    first.resize(640, 480)  # inside the offscreen screen, which restoreGeometry clamps to
    first.show()
    first.close()
    assert settings.value("library_window/geometry") is not None

    second = LibraryWindow(demo_catalog, settings=settings)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (640, 480)


def test_run_studio_reports_a_library_that_cannot_open(qapp, tmp_path, monkeypatch):
    from studio.app import run_studio

    not_a_folder = tmp_path / "library"
    not_a_folder.write_text("a file where the library should be")
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *rest: errors.append(text))

    assert run_studio(str(not_a_folder)) == 1
    assert len(errors) == 1 and "is a file, not a folder" in errors[0]


def test_run_studio_opens_the_window(qapp, tmp_path, monkeypatch):
    from studio import app as studio_app

    seen = {}

    def fake_exec(app):
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, LibraryWindow) and w.isVisible())
        seen["title"] = window.windowTitle()
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    monkeypatch.setattr(studio_app, "LibraryWindow", _with_test_settings(tmp_path))
    library_dir = tmp_path / "fresh"

    assert studio_app.run_studio(str(library_dir)) == 0
    assert seen["title"] == f"Character Studio — {library_dir.resolve()}"
    assert (library_dir / "library.sqlite3").exists()


def _with_test_settings(tmp_path):
    settings = QSettings(str(tmp_path / "app.ini"), QSettings.Format.IniFormat)
    return lambda catalog: LibraryWindow(catalog, settings=settings)


def test_studio_imports_stay_light():
    code = (
        "import sys, studio.app, studio.library_window; "
        "bad=[m for m in ('torch','diffusers','transformers','cv2','insightface') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
