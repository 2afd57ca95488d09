"""The Scene page: pose library on the left, the canvas with its results strip in the middle,
the scene's and the selected character's settings on the right.

Drag a character from the library tree onto the canvas (or pick one from "+ Character", or
"Add to scene" in the library's context menu) to place it (standing, in a box you can move and
resize; the boxes scale with the canvas when the scene's size changes); drag a pose onto it, or a two-person pose onto empty canvas to place two
characters at once; drag its joints. Every edit is undoable (Ctrl+Z, Ctrl+Shift+Z). Render
(Ctrl+R) queues a "scene" job for the worker; its images appear under the canvas, and
double-clicking one reopens the scene it was rendered from.

The library and the disk are read and written off the GUI thread, in order, on the page's reader
(studio/library_reader.py): the choices of characters and models, saving and opening scenes
(files and the library's), queueing renders. What the user asked is checked at once (a scene that
cannot be saved or rendered yet is refused then); the answer follows as `saved`, `opened` or
`render_queued`, and a refusal or failure as a warning (studio/failures.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QPointF, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.pose.presets import PresetLibrary, UnknownPose
from core.scene import edits
from core.scene.choices import model_choices
from core.scene.model import Scene, SceneError
from core.scene.saved import list_saved_scenes, load_saved_scene, save_scene, scene_in_image, with_stored_background
from storage.errors import LibraryError
from studio.context import StudioContext
from studio.failures import failure_line, gui_words
from studio.library_reader import LibraryReader
from studio.scene_composer.canvas import SceneCanvas
from studio.scene_composer.document import SceneDocument
from studio.scene_composer.pose_panel import PosePanel
from studio.scene_composer.properties import PropertiesPanel
from studio.scene_composer.results_strip import ResultsStrip

JOB_KIND = "scene"  # core.scene.jobs registers it with the worker
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)"
SCENE_FILTER = "Scene files (*.json)"
DialogT = TypeVar("DialogT", bound=QDialog)


class CharacterPairDialog(QDialog):
    """Which two characters a two-person pose places. It opens with the two most recently
    placed characters (then the library's first ones), so Enter is usually all it takes."""

    def __init__(self, preset: str, characters: list[tuple[str, str]], suggested: list[tuple[str, str | None]], parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Place two characters: {preset}")
        self.firsts = [QComboBox(), QComboBox()]
        choices = list(characters)
        ordered = [c for c in suggested if c in choices] + [c for c in choices if c not in suggested]
        form = QFormLayout(self)
        form.addRow(QLabel(f"<b>{preset}</b> has two people. Who plays them?"))
        for number, combo in enumerate(self.firsts):
            for name, project in choices:
                combo.addItem(f"{name} — {project}", (name, project))
            if ordered:
                combo.setCurrentIndex(choices.index(ordered[min(number, len(ordered) - 1)]))
            form.addRow(f"Person {number + 1}", combo)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def chosen(self) -> list[tuple[str, str]]:
        return [combo.currentData() for combo in self.firsts]


class SaveToLibraryDialog(QDialog):
    def __init__(self, projects: list[str], name: str, project: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Save scene to the library")
        self.name = QLineEdit(name)
        self.project = QComboBox()
        self.project.addItems(projects)
        if project in projects:
            self.project.setCurrentText(project)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Project", self.project)
        form.addRow(buttons)


class OpenFromLibraryDialog(QDialog):
    def __init__(self, saved: list, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Open a scene from the library")
        self.list = QListWidget()
        for entry in saved:
            item = QListWidgetItem(f"{entry.name} — {entry.project}  ({entry.placements} characters)")
            item.setData(Qt.ItemDataRole.UserRole, (entry.name, entry.project))
            self.list.addItem(item)
        if saved:
            self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(buttons)

    def chosen(self) -> tuple[str, str] | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


class ScenePage(QWidget):
    saved = Signal(str)  # where the scene was saved: a file's path, or its name in the library
    opened = Signal()  # a scene read from a file, the library or an image was opened
    render_queued = Signal(int)  # the id of the "scene" job a render queued

    def __init__(self, context: StudioContext, presets: PresetLibrary | None = None):
        super().__init__()
        self.context = context
        self.presets = presets or PresetLibrary()
        self.reader = LibraryReader(parent=self)
        self.document = SceneDocument(self.presets, self)
        self._opened = 0  # scenes opened so far: a save's answer names the scene it saved only if none was since
        self.save_dialog: SaveToLibraryDialog | None = None
        self.open_dialog: OpenFromLibraryDialog | None = None
        self.characters: dict[tuple[str, str], dict] = {}  # (name, project) -> the character's settings
        self.pair_dialog: CharacterPairDialog | None = None

        self.canvas = SceneCanvas(self.document, context.library.root)
        self.poses = PosePanel(self.presets)
        self.properties = PropertiesPanel(self.document)
        self.results = ResultsStrip(context.queue)
        context.signals.jobs_updated.connect(self.results.show_jobs)
        self.best_of = QSpinBox()
        self.best_of.setRange(1, 16)
        self.best_of.setPrefix("best of ")
        self.best_of.setToolTip("Render this many seeds and mark the most consistent one")

        middle = QSplitter(Qt.Orientation.Vertical)
        middle.setObjectName("canvas-results")  # remembered by the window (studio/main_window.py)
        middle.addWidget(self.canvas)
        middle.addWidget(self.results)
        middle.setStretchFactor(0, 1)
        right = QScrollArea()
        right.setWidget(self.properties)
        right.setWidgetResizable(True)
        right.setMinimumWidth(340)
        right.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.poses)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([250, 860, 380])

        self.toolbar = QToolBar()
        self._build_actions()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.splitter, 1)

        self.canvas.selection_changed.connect(self.properties.select)
        self.canvas.character_dropped.connect(self.place_character)
        self.canvas.pose_dropped.connect(self.drop_pose)
        self.properties.background_requested.connect(self.choose_background)
        self.results.result_opened.connect(self.reopen_result)
        self.results.job_failed.connect(lambda job_id, error: self._status(f"Scene render (job {job_id}) failed: {error}"))
        self.results.job_done.connect(lambda job_id, ids: self._status(f"Scene render (job {job_id}) done: {len(ids)} image(s)"))
        signals = context.signals
        signals.open_scene.connect(self.open_scene_json)
        signals.add_to_scene.connect(self.add_character_when_read)
        signals.library_changed.connect(self.refresh_choices)
        signals.models_changed.connect(self.refresh_choices)
        self.refresh_choices()

    # -- actions --------------------------------------------------------------------------------
    def _action(self, text: str, shortcut: str | QKeySequence | None, slot, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        # Only while this page has focus: other pages use the same keys for their own actions.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else tip or text)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        stack = self.document.undo_stack
        self.new_action = self._action("New", None, self.new_scene, "Start an empty scene")
        self.open_file_action = self._action("Open…", "Ctrl+O", self.choose_file_to_open, "Open a scene file")
        self.save_file_action = self._action("Save as…", "Ctrl+Shift+S", self.choose_file_to_save, "Save the scene as a JSON file")
        self.open_saved_action = self._action("Open saved…", None, self.choose_saved_scene, "Open a scene saved in the library")
        self.save_saved_action = self._action("Save to library…", "Ctrl+S", self.choose_library_save, "Save the scene in the library")
        self.undo_action = stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        self.delete_action = self._action(
            "Delete character", QKeySequence(QKeySequence.StandardKey.Delete), self.properties.delete_selected
        )
        self.mirror_action = self._action("Mirror", "Ctrl+M", self.properties.mirror_selected, "Mirror the selected character's pose")
        self.render_action = self._action("Render", "Ctrl+R", self.render_scene, "Queue a render of this scene")
        for action in (self.new_action, self.open_file_action, self.save_file_action, self.open_saved_action, self.save_saved_action):
            self.toolbar.addAction(action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.undo_action)
        self.toolbar.addAction(self.redo_action)
        self.toolbar.addAction(self.mirror_action)
        self.toolbar.addSeparator()
        # One character at a time, without the library tab: a menu of the library's characters
        # (read off the GUI thread with the other choices), each placed at the canvas's centre.
        self.character_menu = QMenu("Add character", self)
        self.character_menu.triggered.connect(lambda action: self.add_character(*action.data()))
        self.add_character_button = QToolButton()
        self.add_character_button.setText("+ Character")
        self.add_character_button.setToolTip("Place a character from the library at the centre of the canvas")
        self.add_character_button.setMenu(self.character_menu)
        self.add_character_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.toolbar.addWidget(self.add_character_button)
        self._fill_character_menu()
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.best_of)
        self.toolbar.addAction(self.render_action)

    # -- what the library offers --------------------------------------------------------------
    def refresh_choices(self) -> None:
        """Reads the characters and models to choose from; the panels get them when read."""
        catalog, library = self.context.catalog, self.context.library

        def failed(exc: Exception) -> None:
            self._status(f"Could not read the library: {exc}" if isinstance(exc, LibraryError) else failure_line("read the library", exc))

        self.reader.call(lambda: (catalog.list_characters(), model_choices(library)), lambda answer: self._on_choices(*answer), failed)

    def _on_choices(self, records, models) -> None:
        self.characters = {(c.name, c.project): dict(c.settings or {}) for c in records}
        self.properties.set_choices(list(self.characters), models.checkpoints, models.loras)
        self._fill_character_menu()

    def _fill_character_menu(self) -> None:
        menu = self.character_menu
        menu.clear()
        characters = sorted(self.characters)
        for name, project in characters:
            action = menu.addAction(f"{name} — {project}")
            action.setData((name, project))
        if not characters:
            menu.addAction("The library has no characters yet").setEnabled(False)

    def busy(self) -> bool:
        """Whether a read or write of this page has not answered yet."""
        return self.reader.busy()

    # -- drops ----------------------------------------------------------------------------------
    def place_character(self, name: str, project: str | None, point: QPointF) -> int:
        """A dropped character, standing in a new box centred on `point`. Returns its index."""
        if project is None:
            same_name = [p for n, p in self.characters if n == name]
            project = same_name[0] if len(same_name) == 1 else None
        scene = self.document.scene
        settings = self.characters.get((name, project), {}) if project is not None else {}
        placement = edits.new_character_placement(scene, name, project, (point.x(), point.y()), self.presets, settings)
        self.document.edit(edits.add_placements(scene, placement), f"Place {name}")
        index = len(self.document.scene.placements) - 1
        self.canvas.select(index)
        return index

    def add_character(self, name: str, project: str | None) -> int:
        """Places a character at the centre of the canvas, as a drop there would. Returns its index."""
        width, height = self.document.scene.size
        index = self.place_character(name, project, QPointF(width / 2, height / 2))
        self._status(f"Placed {name} in the scene")
        return index

    def add_character_when_read(self, name: str, project: str) -> None:
        """A character sent from another page ("Add to scene"): placed once the choices asked for
        before it have been read (the reader answers in order), so it takes its own settings."""

        def add(_none: None) -> None:
            self.add_character(name, project)

        self.reader.call(lambda: None, add)

    def drop_pose(self, name: str, index: int, point: QPointF) -> None:
        try:
            preset = self.presets.get(name)
        except UnknownPose as exc:
            self._status(str(exc))
            return
        scene = self.document.scene
        if index >= 0:
            who = scene.placements[index].character
            if preset.people == 1:
                self.document.edit(edits.set_pose(scene, index, preset.name), f"Pose {who}: {preset.name}")
                return
            after = edits.pose_pair(scene, index, preset.name, preset.skeleton)
            self.document.edit(after, f"Pose {who}: {preset.name}")
            return
        if preset.people < 2:
            self._status(f"Drop '{preset.name}' onto a character to pose it (two-person poses place two characters)")
            return
        characters = sorted(self.characters)
        if not characters:
            self._status("The library has no characters to place yet")
            return
        dialog = CharacterPairDialog(preset.name, characters, edits.recent_characters(scene), self)
        dialog.accepted.connect(lambda: self._place_pair(preset.name, point, dialog.chosen()))
        dialog.finished.connect(lambda _result: setattr(self, "pair_dialog", None))
        self.pair_dialog = dialog
        dialog.open()  # window-modal and not blocking: the drop has finished by the time it shows

    def _place_pair(self, preset: str, point: QPointF, characters: list[tuple[str, str]]) -> None:
        scene = self.document.scene
        skeleton = self.presets.skeleton(preset)
        new = edits.pair_placements(scene, preset, skeleton, (point.x(), point.y()), characters)
        names = " and ".join(p.character for p in new)
        self.document.edit(edits.add_placements(scene, *new), f"Place {names}: {preset}")
        self.canvas.select(len(self.document.scene.placements) - 1)

    # -- opening and saving -------------------------------------------------------------------
    def new_scene(self) -> None:
        self._opened += 1
        self.document.open(edits.new_scene(self.document.scene.size), "New scene")

    def open_scene(self, scene: Scene, text: str, saved_id: int | None = None, saved_project: str | None = None) -> None:
        self._opened += 1
        self.canvas.select(-1)
        self.document.open(scene, text, saved_id, saved_project)
        self.canvas.fit()

    def open_scene_json(self, data: dict) -> None:
        """A scene JSON from elsewhere (the gallery's "open scene")."""
        try:
            scene = Scene.from_json(dict(data))
        except SceneError as exc:
            self.warn(f"This scene cannot be opened: {exc}")
            return
        self.open_scene(scene, "Open scene")
        self.context.signals.show_page.emit("scene")

    def reopen_result(self, generation_id: int, path: str) -> None:
        def reopened(scene: Scene) -> None:
            self.open_scene(scene, f"Reopen the scene of #{generation_id}")
            self._status(f"Reopened the scene of image #{generation_id} (seed {scene.seed})")
            self.opened.emit()

        self.reader.call(lambda: scene_in_image(path), reopened, self._failed(f"reopen the scene of #{generation_id}"))

    def open_file(self, path: str) -> None:
        """Opens the scene file at `path` once it is read (`opened`), or warns why it cannot."""

        def read(scene: Scene) -> None:
            self.open_scene(scene, f"Open {Path(path).name}")
            self.opened.emit()

        self.reader.call(lambda: Scene.load(path), read, self._failed(f"open {path}"))

    def save_file(self, path: str) -> bool:
        """Saves the scene as a JSON file at `path` (its background copied into the library first);
        False when the scene cannot be saved yet (warned at once), else `saved` follows."""
        scene = self._valid_scene("save")
        if scene is None:
            return False
        library, opened = self.context.library, self._opened

        def write() -> Scene:
            kept = with_stored_background(library, scene)
            kept.save(path)
            return kept

        def written(kept: Scene) -> None:
            self._keep_background(scene, kept, opened)
            self._status(f"Saved the scene to {path}")
            self.saved.emit(path)

        def failed(exc: Exception) -> None:
            if isinstance(exc, OSError):
                self.warn(f"Could not write {path}: {exc.strerror or exc}")
            else:
                self._failed(f"save the scene to {path}")(exc)

        self.reader.call(write, written, failed)
        return True

    def save_to_library(self, project: str, name: str) -> bool:
        """Saves the scene as `name` in `project`; False when the scene cannot be saved yet (warned
        at once), else `saved` follows (or a warning, when the library refuses)."""
        scene = self._valid_scene("save")
        if scene is None:
            return False
        library, opened = self.context.library, self._opened

        def write():
            kept = with_stored_background(library, scene)
            return (kept, *save_scene(library, project, name, replace(kept, name=name)))

        def written(answer) -> None:
            kept, record, created = answer
            self._keep_background(scene, kept, opened)
            if opened == self._opened:
                self.document.saved_id, self.document.saved_project = record.id, project
            self._status(f"{'Saved' if created else 'Updated'} scene '{record.name}' in '{project}'")
            self.saved.emit(record.name)

        self.reader.call(write, written, self._failed(f"save the scene '{name}'"))
        return True

    def open_from_library(self, name: str, project: str | None) -> None:
        """Opens the saved scene `name` once it is read (`opened`), or warns why it cannot."""
        library = self.context.library

        def read(answer: tuple[Scene, int]) -> None:
            scene, scene_id = answer
            self.open_scene(scene, f"Open {name}", scene_id, project)
            self.opened.emit()

        self.reader.call(lambda: load_saved_scene(library, name, project), read, self._failed(f"open the scene '{name}'"))

    def choose_file_to_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a scene", "", SCENE_FILTER)
        if path:
            self.open_file(path)

    def choose_file_to_save(self) -> None:
        name = (self.document.scene.name or "scene") + ".json"
        path, _ = QFileDialog.getSaveFileName(self, "Save the scene", name, SCENE_FILTER)
        if path:
            self.save_file(path if path.lower().endswith(".json") else path + ".json")

    def choose_library_save(self) -> None:
        """Asks for a name and a project (once the projects are read), then saves there."""
        catalog = self.context.catalog
        self.reader.call(lambda: [p.name for p in catalog.list_projects()], self._ask_library_save, self._failed("list the projects"))

    def _ask_library_save(self, projects: list[str]) -> None:
        if not projects:
            self.warn("Create a project in the library first: a saved scene belongs to a project.")
            return
        dialog = SaveToLibraryDialog(projects, self.document.scene.name or "Scene", self.document.saved_project, self)

        def accepted() -> None:
            if dialog.name.text().strip():
                self.save_to_library(dialog.project.currentText(), dialog.name.text().strip())

        self.save_dialog = self._open_dialog(dialog, accepted)

    def choose_saved_scene(self) -> None:
        """Lists the library's saved scenes (once read) to open one."""
        library = self.context.library
        self.reader.call(lambda: list_saved_scenes(library), self._ask_saved_scene, self._failed("list the saved scenes"))

    def _ask_saved_scene(self, saved: list) -> None:
        if not saved:
            self._status("No scenes are saved in the library yet")
            return
        dialog = OpenFromLibraryDialog(saved, self)

        def accepted() -> None:
            chosen = dialog.chosen()
            if chosen:
                self.open_from_library(*chosen)

        self.open_dialog = self._open_dialog(dialog, accepted)

    @staticmethod
    def _open_dialog(dialog: DialogT, accepted: Callable[[], None]) -> DialogT:
        # Window-modal and not blocking (as the pair dialog): the answer that asked has returned.
        dialog.accepted.connect(accepted)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def choose_background(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a background", "", IMAGE_FILTER)
        if path:
            self.set_background(path)

    def set_background(self, path: str | None) -> None:
        self.document.edit(replace(self.document.scene, background=path), "Background" if path else "Clear background")

    # -- rendering ------------------------------------------------------------------------------
    def render_scene(self) -> None:
        """Queues a "scene" job (`render_queued` follows with its id); its images appear in the
        strip when it finishes. A scene that cannot render yet is refused at once."""
        scene = self._valid_scene("render")
        if scene is None:
            return
        best_of = self.best_of.value()
        payload = {"scene": scene.to_json(), "best_of": best_of if best_of > 1 else None, "base": None, "scene_id": self.document.saved_id}
        first = scene.placements[0] if scene.placements else None
        queue = self.context.queue

        def queued(job) -> None:
            self.results.track_job(job.id)
            self.context.signals.jobs_changed.emit()
            self._status(f"Scene render queued (job {job.id})")
            self.render_queued.emit(job.id)

        self.reader.call(
            lambda: queue.enqueue(
                JOB_KIND, payload, character=first.character if first else None, project=first.project if first else None
            ),
            queued,
            self._failed("queue the render"),
        )

    def _keep_background(self, scene: Scene, kept: Scene, opened: int) -> None:
        """After a save: the background copied into the library (files/...) becomes the document's
        own, as an edit, so what was saved reopens anywhere (unless another scene was opened, or
        another background chosen, meanwhile)."""
        if kept.background != scene.background and opened == self._opened and self.document.scene.background == scene.background:
            self.document.edit(replace(self.document.scene, background=kept.background), "Keep the background in the library")

    def _valid_scene(self, doing: str) -> Scene | None:
        scene = self.document.scene
        try:
            return scene.validate()
        except SceneError as exc:
            self.warn(f"The scene cannot {doing} yet: {exc}")
            return None

    # -- messages and page hooks ------------------------------------------------------------------
    def warn(self, text: str) -> None:
        QMessageBox.warning(self, "Scene", text)

    def _failed(self, doing: str):
        """A refusal (the library's, or a scene that cannot be read) as it is; anything else as
        studio/failures.py words it."""
        return lambda exc: self.warn(gui_words(str(exc)) if isinstance(exc, (LibraryError, SceneError)) else failure_line(doing, exc))

    def _status(self, text: str) -> None:
        self.context.signals.status_message.emit(text)

    def on_shown(self) -> None:
        self.canvas.fit()
        self.canvas.setFocus()

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("scene/splitter", self.splitter.saveState())
        settings.setValue("scene/best_of", self.best_of.value())

    def restore_state(self, settings: QSettings) -> None:
        state = settings.value("scene/splitter")
        if state is not None:
            self.splitter.restoreState(state)
        best_of = settings.value("scene/best_of", 1)
        if isinstance(best_of, int | float | str):  # an ini file hands back text; anything else is ignored
            try:
                self.best_of.setValue(int(best_of))
            except ValueError:
                pass
