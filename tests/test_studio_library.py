"""The library page in the studio window, against a real library on disk, driven as a user would:
through its actions, its keyboard shortcuts and the settings it restores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

from core.catalog.service import Catalog
from core.demo.library import build_demo_library
from storage.library import open_library
from studio.context import StudioContext
from studio.library_page import MIME_CHARACTER, LibraryPage, TreeNode
from studio.main_window import StudioWindow
from tests.conftest import REPO_ROOT


@pytest.fixture
def demo_library(tmp_path):
    library = open_library(tmp_path / "lib")
    build_demo_library(Catalog(library))
    yield library
    library.close()


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def context(demo_library, settings):
    return StudioContext.open(demo_library, settings)


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *rest: shown.append(text))
    return shown


@pytest.fixture
def page(qtbot, context, warnings):
    page = LibraryPage(context)
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    settle(qtbot, page)
    return page


def settle(qtbot, page: LibraryPage) -> None:
    """Waits until the page's reads and edits (made off the GUI thread) have answered."""
    qtbot.waitUntil(lambda: not page.busy(), timeout=10_000)


def visible_tree(page: LibraryPage) -> dict[str, list[str]]:
    tree = {}
    for i in range(page.tree.topLevelItemCount()):
        project = page.tree.topLevelItem(i)
        if project.isHidden():
            continue
        children = [project.child(j) for j in range(project.childCount())]
        tree[project.text(0)] = [c.text(0) for c in children if not c.isHidden()]
    return tree


def characters_in_library(context) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {p.name: [] for p in context.catalog.list_projects()}
    for character in context.catalog.list_characters():
        names[character.project].append(character.name)
    return names


def answer_text(monkeypatch, text: str) -> None:
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (text, True))


def test_selecting_a_character_shows_its_page_with_thumbnails(page, qtbot, context):
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}
    picked = []
    context.signals.character_selected.connect(lambda name, project: picked.append((name, project)))

    assert page.select(TreeNode("Aria", "Demo"))
    settle(qtbot, page)

    character = page.character_page
    assert page.details.currentWidget() is character
    assert character.title.text() == "Aria"
    assert "ariaknight" in character.subtitle.text()
    assert picked == [("Aria", "Demo")]
    grid = character.references
    assert [grid.item(i).text() for i in range(grid.count())] == ["front", "three-quarter", "side", "back"]
    # Thumbnails are decoded on the thread pool and arrive a moment later.
    qtbot.waitUntil(lambda: all(not grid.item(i).icon().isNull() for i in range(grid.count())), timeout=5000)
    size = grid.item(0).icon().availableSizes()[0]
    assert 0 < max(size.width(), size.height()) <= 160


def test_selecting_a_project_shows_its_summary(page):
    page.select(TreeNode("Demo"))
    assert page.details.currentWidget() is page.summary
    assert page.summary.title.text() == "Demo"
    assert "2 characters" in page.summary.subtitle.text()
    assert page.character_page.character is None


def test_search_filters_characters_and_hiding_the_selection_clears_it(page):
    page.select(TreeNode("Aria", "Demo"))
    page.search.setText("kae")
    assert visible_tree(page) == {"Demo": ["Kael"]}
    assert page.current_node() is None
    assert page.details.currentWidget() is page.summary

    page.search.setText("nobody")
    assert visible_tree(page) == {}
    page.search.clear()
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}


def test_new_project_and_character_undo_and_redo(page, context, monkeypatch, warnings, qtbot):
    changed = []
    context.signals.library_changed.connect(lambda: changed.append(True))
    answer_text(monkeypatch, "Side quests")
    page.new_project_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"], "Side quests": []}
    assert page.current_node() == TreeNode("Side quests")

    answer_text(monkeypatch, "  Mira   Vale ")
    page.new_character_action.trigger()  # into the selected project
    settle(qtbot, page)
    assert visible_tree(page)["Side quests"] == ["Mira Vale"]
    assert page.current_node() == TreeNode("Mira Vale", "Side quests")
    assert page.character_page.title.text() == "Mira Vale"
    assert len(changed) == 2

    page.undo_action.trigger()  # the character goes to the trash
    settle(qtbot, page)
    assert characters_in_library(context) == {"Demo": ["Aria", "Kael"], "Side quests": []}
    assert [entry["name"] for entry in context.catalog.list_trash()] == ["Mira Vale"]
    page.undo_action.trigger()
    settle(qtbot, page)
    assert characters_in_library(context) == {"Demo": ["Aria", "Kael"]}
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}

    page.redo_action.trigger()
    settle(qtbot, page)
    page.redo_action.trigger()
    settle(qtbot, page)
    assert characters_in_library(context) == {"Demo": ["Aria", "Kael"], "Side quests": ["Mira Vale"]}
    assert page.current_node() == TreeNode("Mira Vale", "Side quests")
    assert warnings == []


def test_refused_create_warns_and_pushes_nothing(page, monkeypatch, warnings, qtbot):
    answer_text(monkeypatch, "Demo")
    page.new_project_action.trigger()
    settle(qtbot, page)
    assert len(warnings) == 1 and "already exists" in warnings[0]
    assert not page.undo_stack.canUndo()
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}


def test_rename_delete_and_undo_restores_from_the_trash(page, context, monkeypatch, warnings, qtbot):
    page.select(TreeNode("Kael", "Demo"))
    answer_text(monkeypatch, "Kael the Swift")
    page.rename_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael the Swift"]}
    assert context.catalog.show_character("Kael the Swift", "Demo").reference_count == 4

    page.delete_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria"]}
    assert page.current_node() == TreeNode("Demo")
    assert [entry["name"] for entry in context.catalog.list_trash()] == ["Kael the Swift"]

    page.undo_action.trigger()  # back from the trash, references and all
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael the Swift"]}
    assert page.current_node() == TreeNode("Kael the Swift", "Demo")
    assert context.catalog.list_trash() == []
    assert page.character_page.references.count() == 4

    page.undo_action.trigger()  # the rename
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}
    assert page.current_node() == TreeNode("Kael", "Demo")
    assert warnings == []


def test_keyboard_shortcuts_delete_rename_and_undo(page, context, monkeypatch, qtbot):
    page.select(TreeNode("Aria", "Demo"))
    page.tree.setFocus()
    qtbot.waitUntil(page.tree.hasFocus)

    QTest.keyClick(page.tree, Qt.Key.Key_Delete)
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Kael"]}
    QTest.keyClick(page.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}
    QTest.keyClick(page.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Kael"]}

    page.select(TreeNode("Demo"))
    answer_text(monkeypatch, "Saga")
    QTest.keyClick(page.tree, Qt.Key.Key_F2)
    settle(qtbot, page)
    assert visible_tree(page) == {"Saga": ["Kael"]}
    answer_text(monkeypatch, "Archive")
    QTest.keyClick(page.tree, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    settle(qtbot, page)
    assert set(visible_tree(page)) == {"Archive", "Saga"}


def test_deleting_a_project_undoes(page, context, qtbot):
    page.select(TreeNode("Demo"))
    page.delete_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {}
    page.undo_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}


def test_edits_on_other_pages_refresh_the_tree(page, context, qtbot):
    picked = []
    context.signals.character_selected.connect(lambda name, project: picked.append(name))
    page.select(TreeNode("Kael", "Demo"))
    context.catalog.create_character("Zed", "Demo")
    context.signals.library_changed.emit()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael", "Zed"]}
    assert page.current_node() == TreeNode("Kael", "Demo")
    assert picked == ["Kael"]  # a refresh is not a new pick


def test_characters_drag_out_as_json(page):
    item = page.find_item(TreeNode("Aria", "Demo"))
    mime = page.tree.mimeData([item])
    assert mime.formats()[0] == MIME_CHARACTER
    assert json.loads(bytes(mime.data(MIME_CHARACTER)).decode()) == {"name": "Aria", "project": "Demo"}
    assert page.tree.mimeData([page.find_item(TreeNode("Demo"))]) is None
    assert not page.find_item(TreeNode("Demo")).flags() & Qt.ItemFlag.ItemIsDragEnabled


def test_the_last_character_is_selected_again_at_the_next_start(qtbot, context, settings):
    first = StudioWindow(context)
    qtbot.addWidget(first)
    first.show()
    library = first.page("library")
    settle(qtbot, library)
    library.select(TreeNode("Kael", "Demo"))
    settle(qtbot, library)
    first.close()

    second = StudioWindow(StudioContext.open(context.library, settings))
    qtbot.addWidget(second)
    second.show()
    restored = second.page("library")
    settle(qtbot, restored)
    assert restored.current_node() == TreeNode("Kael", "Demo")
    assert restored.character_page.title.text() == "Kael"

    # A character deleted meanwhile falls back to its project.
    restored.delete_action.trigger()
    settle(qtbot, restored)
    second.close()
    third = StudioWindow(StudioContext.open(context.library, settings))
    qtbot.addWidget(third)
    settle(qtbot, third.page("library"))
    assert third.page("library").current_node() == TreeNode("Demo")


def test_run_studio_reports_a_library_that_cannot_open(qapp, tmp_path, monkeypatch):
    from studio.app import run_studio

    not_a_folder = tmp_path / "library"
    not_a_folder.write_text("a file where the library should be")
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *rest: errors.append(text))

    assert run_studio(str(not_a_folder), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)) == 1
    assert len(errors) == 1 and "is a file, not a folder" in errors[0]


def test_run_studio_opens_the_library_chosen_in_settings(qapp, tmp_path, monkeypatch):
    from studio import app as studio_app
    from studio.worker_supervisor import WorkerSupervisor

    seen = {}
    # The app starts the library's worker; here that is only recorded (test_studio_queue runs real ones).
    monkeypatch.setattr(WorkerSupervisor, "start", lambda supervisor: seen.setdefault("worker_started", str(supervisor.log_path)))

    def fake_exec(app):
        QApplication.processEvents()  # the window's first timers: pages, poller, the worker start
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, StudioWindow) and w.isVisible())
        seen["title"] = window.windowTitle()
        seen["tab"] = window.tabs.tabText(window.tabs.currentIndex())
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    monkeypatch.delenv("CHARACTER_STUDIO_LIBRARY", raising=False)
    chosen = tmp_path / "chosen"
    settings = QSettings(str(tmp_path / "app.ini"), QSettings.Format.IniFormat)
    settings.setValue("library/path", str(chosen))

    assert studio_app.run_studio(None, settings) == 0
    assert seen.pop("worker_started").startswith(str(chosen.resolve()))
    assert seen == {"title": f"Character Studio — {chosen.resolve()}", "tab": "Library"}
    assert (chosen / "library.sqlite3").exists()

    given = tmp_path / "given"  # the command line wins over the settings
    assert studio_app.run_studio(str(given), settings) == 0
    assert seen["title"] == f"Character Studio — {given.resolve()}"


def test_studio_imports_stay_light():
    code = (
        "import sys, studio.app, studio.main_window, studio.library_page, studio.character_page, studio.train_dialog; "
        "bad=[m for m in ('torch','diffusers','transformers','cv2','insightface') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr


def test_a_character_deleted_elsewhere_warns_instead_of_crashing(page, context, warnings, qtbot):
    context.catalog.delete_character("Aria", "Demo")
    page.select(TreeNode("Aria", "Demo"))  # the tree has not been refreshed yet
    settle(qtbot, page)
    assert len(warnings) == 1 and "Aria" in warnings[0]
    assert page.character_page.character is None
    assert page.details.currentWidget() is page.summary


def test_a_cancelled_dialog_changes_nothing(page, monkeypatch, warnings, qtbot):
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("Ignored", False))
    page.new_project_action.trigger()
    page.select(TreeNode("Aria", "Demo"))
    page.rename_action.trigger()
    settle(qtbot, page)
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}
    assert not page.undo_stack.canUndo() and warnings == []


def test_a_rename_to_a_taken_name_is_refused_with_a_warning(page, monkeypatch, warnings, qtbot):
    page.select(TreeNode("Kael", "Demo"))
    answer_text(monkeypatch, "Aria")
    page.rename_action.trigger()
    settle(qtbot, page)
    assert warnings == ["project 'Demo' already has a character named 'Aria'"]
    assert visible_tree(page) == {"Demo": ["Aria", "Kael"]}
    assert not page.undo_stack.canUndo()


def test_undo_waits_for_the_edit_and_a_refused_undo_leaves_the_stack(page, context, monkeypatch, warnings, qtbot):
    page.select(TreeNode("Kael", "Demo"))
    answer_text(monkeypatch, "Kael the Swift")
    page.rename_action.trigger()
    assert not page.undo_action.isEnabled()  # nothing to undo until the rename is made
    settle(qtbot, page)
    assert page.undo_action.isEnabled()

    context.catalog.create_character("Kael", "Demo")  # the old name is taken meanwhile
    page.undo_action.trigger()
    assert page.undo_stack.canUndo() and not page.undo_action.isEnabled()  # off while the undo runs
    settle(qtbot, page)
    assert len(warnings) == 1 and "already has a character named 'Kael'" in warnings[0]
    assert not page.undo_stack.canUndo() and not page.undo_stack.canRedo()  # the refused edit is dropped
    assert visible_tree(page) == {"Demo": ["Aria", "Kael", "Kael the Swift"]}


def test_add_to_scene_in_the_context_menu_places_the_character_on_the_scene_page(qtbot, context, warnings):
    window = StudioWindow(context)
    qtbot.addWidget(window)
    window.show()
    library = window.page("library")
    settle(qtbot, library)
    assert library.add_to_scene_action in library.tree.actions()
    library.select(TreeNode("Demo"))
    assert not library.add_to_scene_action.isEnabled()  # a project row: nothing to place
    library.select(TreeNode("Kael", "Demo"))
    settle(qtbot, library)
    assert library.add_to_scene_action.isEnabled()

    library.add_to_scene_action.trigger()
    assert window.tabs.currentWidget() is window.slots["scene"]
    scene_page = window.page("scene")
    qtbot.waitUntil(lambda: len(scene_page.document.scene.placements) == 1, timeout=10_000)
    placement = scene_page.document.scene.placements[0]
    assert (placement.character, placement.project) == ("Kael", "Demo")
    x, y, w, h = placement.box
    width, height = scene_page.document.scene.size
    assert (x + w / 2, y + h / 2) == pytest.approx((width / 2, height / 2), abs=1)
    window.close()


def test_a_drag_held_over_a_tab_switches_to_it(qtbot, context, warnings):
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent

    window = StudioWindow(context)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    settle(qtbot, window.page("library"))
    bar = window.tabs.tabBar()
    library_tab, scene_tab = (list(window.slots).index(key) for key in ("library", "scene"))
    window.tabs.setCurrentIndex(library_tab)
    data = QMimeData()
    data.setData(MIME_CHARACTER, json.dumps({"name": "Aria", "project": "Demo"}).encode())
    copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    over_scene = bar.tabRect(scene_tab).center()

    def hover(event) -> None:
        QApplication.sendEvent(bar, event)
        assert event.isAccepted()

    hover(QDragEnterEvent(over_scene, copy, data, left, none))
    hover(QDragMoveEvent(over_scene, copy, data, left, none))
    QTest.qWait(150)
    assert window.tabs.currentIndex() == library_tab  # a drag passing over does not switch yet
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == scene_tab, timeout=2_000)

    # A drag that leaves the bar before the delay switches nothing.
    window.tabs.setCurrentIndex(library_tab)
    over_library = bar.tabRect(library_tab).center()
    hover(QDragEnterEvent(over_library, copy, data, left, none))
    hover(QDragMoveEvent(over_scene, copy, data, left, none))
    QApplication.sendEvent(bar, QDragLeaveEvent())
    QTest.qWait(800)
    assert window.tabs.currentIndex() == library_tab
    window.close()
