"""The library page: projects and their characters in a tree with search on the left, the chosen
character's page (or a project's summary) on the right.

New, rename and delete (to the trash) go through one QUndoStack, so every edit undoes; the edits,
their undo and redo, and every read of the tree run off the GUI thread (studio/library_edits.py,
studio/library_reader.py) and the tree is rebuilt when the read answers. Characters drag out of the
tree as MIME_CHARACTER (JSON {"name", "project"}), which the scene composer takes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.catalog.records import CharacterRecord, ProjectRecord
from core.catalog.service import Catalog
from studio.character_page import CharacterPage, plain_label, title_label
from studio.context import StudioContext
from studio.failures import failure_line
from studio.library_edits import LibraryEdit, LibraryEdits
from studio.library_reader import LibraryReader

MIME_CHARACTER = "application/x-character-studio-character"
NODE_ROLE = Qt.ItemDataRole.UserRole
LAST_PROJECT_KEY = "library/last_project"
LAST_CHARACTER_KEY = "library/last_character"
SPLITTER_KEY = "library/splitter"


@dataclass(frozen=True)
class TreeNode:
    """What a tree row stands for; `project` is None on project rows."""

    name: str
    project: str | None = None

    @property
    def is_character(self) -> bool:
        return self.project is not None

    @property
    def project_name(self) -> str:
        return self.project if self.project is not None else self.name


def character_mime(name: str, project: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(MIME_CHARACTER, json.dumps({"name": name, "project": project}).encode())
    mime.setText(name)
    return mime


class LibraryTree(QTreeWidget):
    """The tree; character rows drag out as MIME_CHARACTER."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setHeaderLabels(["Library", "References"])
        self.setColumnCount(2)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, self.header().ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, self.header().ResizeMode.ResizeToContents)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

    def mimeTypes(self) -> list[str]:
        return [MIME_CHARACTER]

    # PySide6's stubs say QMimeData, but Qt takes a null answer: no drag starts (a project row).
    def mimeData(self, items: Sequence[QTreeWidgetItem], /) -> QMimeData | None:  # type: ignore[override]
        nodes = [item.data(0, NODE_ROLE) for item in items]
        characters = [node for node in nodes if node is not None and node.is_character]
        if not characters:
            return None
        return character_mime(characters[0].name, characters[0].project)


class ProjectSummary(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title_label()
        self.subtitle = plain_label()
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addStretch(1)

    def show_project(self, project: ProjectRecord, characters: list[CharacterRecord]) -> None:
        self.title.setText(project.name)
        count = f"{project.characters} character" + ("" if project.characters == 1 else "s")
        lines = [f"Project · {count}"]
        if project.notes:
            lines.append(project.notes)
        lines += [f"  {c.name} — {c.reference_count} reference{'' if c.reference_count == 1 else 's'}" for c in characters]
        if not characters:
            lines.append("New character (Ctrl+N) adds one to this project.")
        self.subtitle.setText("\n".join(lines))

    def show_nothing(self) -> None:
        self.title.setText("No character selected")
        self.subtitle.setText("Pick a character in the library, or create one with New character (Ctrl+N).")


def read_library(catalog: Catalog) -> list[tuple[ProjectRecord, list[CharacterRecord]]]:
    """Every project with its characters (off the GUI thread)."""
    characters = catalog.list_characters()
    return [(p, [c for c in characters if c.project == p.name]) for p in catalog.list_projects()]


class LibraryPage(QWidget):
    refreshed = Signal()  # the tree was read and rebuilt

    def __init__(self, context: StudioContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.catalog = context.catalog
        self.contents: list[tuple[ProjectRecord, list[CharacterRecord]]] = []
        self.projects: dict[str, ProjectRecord] = {}
        self.undo_stack = QUndoStack(self)
        self.edits = LibraryEdits(self.undo_stack, self._warn, self)
        self.reader = LibraryReader(parent=self)
        self._read_stamp = 0  # the latest read of the tree: only its answer is shown
        self._loaded = False  # the tree was read once
        # What to select when the tree is next read (the first that exists); None: the current row.
        self._targets: list[TreeNode] | None = None
        self._reuse: dict | None = None  # a "reuse parameters" waiting for the tree to be read...
        self._reuse_selected: dict | None = None  # ...and then for its character to be read
        self._emitting = False
        self._selected: TreeNode | None = None  # what the page shows, to tell a new pick from a refresh

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search characters…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.apply_filter)
        self.tree = LibraryTree()
        self.tree.currentItemChanged.connect(self._on_current_item_changed)

        self.toolbar = QToolBar("Library")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.tree)

        self.summary = ProjectSummary()
        self.character_page = CharacterPage(context, self.edits)
        self.character_page.shown.connect(self._character_shown)
        self.details = QStackedWidget()
        self.details.addWidget(self.summary)
        self.details.addWidget(self.character_page)

        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 1000])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.splitter)

        self._build_actions()
        context.signals.library_changed.connect(self._library_changed_elsewhere)
        context.signals.reuse_request.connect(self.reuse_request)
        self.refresh()

    # -- actions --------------------------------------------------------------------------
    def _action(self, text: str, shortcut: str | QKeySequence.StandardKey, slot, on: QWidget | None = None) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        # Shortcuts of the page only while it (or, for Delete and F2, the tree) has the focus:
        # other pages have their own Ctrl+Z, and Delete in a text field deletes text.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        (on or self).addAction(action)
        return action

    def _build_actions(self) -> None:
        self.new_project_action = self._action("New project…", "Ctrl+Shift+N", self.new_project)
        self.new_character_action = self._action("New character…", "Ctrl+N", self.new_character)
        self.rename_action = self._action("Rename…", "F2", self.rename_selected, on=self.tree)
        self.delete_action = self._action("Delete", QKeySequence.StandardKey.Delete, self.delete_selected, on=self.tree)
        self.undo_action = self._action("Undo", "Ctrl+Z", self.edits.undo)
        self.redo_action = self._action("Redo", "Ctrl+Shift+Z", self.edits.redo)
        # Off while an edit runs: undo and redo act on the stack as it will be once it is made.
        self.undo_stack.canUndoChanged.connect(self._update_undo_actions)
        self.undo_stack.canRedoChanged.connect(self._update_undo_actions)
        self.edits.running_changed.connect(self._update_undo_actions)
        # A read of the shown character that answers while an edit runs may see it renamed or in
        # the trash; the edit's settler selects what to show afterwards.
        self.edits.running_changed.connect(self._on_edit_running)
        self.undo_stack.undoTextChanged.connect(lambda text: self.undo_action.setToolTip(f"Undo {text} (Ctrl+Z)"))
        self.undo_stack.redoTextChanged.connect(lambda text: self.redo_action.setToolTip(f"Redo {text} (Ctrl+Shift+Z)"))
        self.undo_action.setEnabled(False)
        self.redo_action.setEnabled(False)
        self.refresh_action = self._action("Refresh", "F5", self.refresh)
        for action in (self.new_project_action, self.new_character_action, self.rename_action, self.delete_action,
                       self.undo_action, self.redo_action):  # fmt: skip
            self.toolbar.addAction(action)
        # The tree's context menu: a character row can go straight into the scene composer.
        self.add_to_scene_action = QAction("Add to scene", self)
        self.add_to_scene_action.setToolTip("Place this character at the centre of the Scene page's canvas")
        self.add_to_scene_action.triggered.connect(lambda _checked=False: self.add_selected_to_scene())
        self.add_to_scene_action.setEnabled(False)
        self.tree.currentItemChanged.connect(
            lambda current, _previous: self.add_to_scene_action.setEnabled(
                current is not None and current.data(0, NODE_ROLE) is not None and current.data(0, NODE_ROLE).is_character
            )
        )
        self.tree.addAction(self.add_to_scene_action)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def add_selected_to_scene(self) -> None:
        """Shows the Scene page (the window builds it on first show) and places the selected
        character there."""
        node = self.current_node()
        if node is None or node.project is None:
            self._status("Choose a character to add to the scene")
            return
        self.context.signals.show_page.emit("scene")
        self.context.signals.add_to_scene.emit(node.name, node.project)

    def _update_undo_actions(self, *_changed) -> None:
        self.undo_action.setEnabled(self.undo_stack.canUndo() and not self.edits.running)
        self.redo_action.setEnabled(self.undo_stack.canRedo() and not self.edits.running)

    def new_project(self) -> None:
        name, ok = QInputDialog.getText(self, "New project", "Project name:")
        if not ok:
            return
        catalog = self.catalog

        def edit_of(project: ProjectRecord) -> LibraryEdit:
            return LibraryEdit(
                f"new project {project.name}",
                lambda: catalog.restore_project(project.name),
                lambda: catalog.delete_project(project.name),
                self._settler(TreeNode(project.name), None),
            )

        self.edits.make_then_push(
            lambda: catalog.create_project(name),
            edit_of,
            f"create the project {name}",
            lambda project: self._status(f"Created project {project.name}"),
        )

    def new_character(self) -> None:
        project = self._project_for_new_character()
        if project is None:
            return
        name, ok = QInputDialog.getText(self, "New character", f"Character name (in {project}):")
        if not ok:
            return
        catalog = self.catalog

        def edit_of(character: CharacterRecord) -> LibraryEdit:
            node = TreeNode(character.name, character.project)
            return LibraryEdit(
                f"new character {character.name}",
                lambda: catalog.restore_character(node.name, node.project),
                lambda: catalog.delete_character(node.name, node.project),
                self._settler(node, TreeNode(character.project)),
            )

        self.edits.make_then_push(
            lambda: catalog.create_character(name, project),
            edit_of,
            f"create the character {name}",
            lambda character: self._status(f"Created character {character.name} in {character.project}"),
        )

    def rename_selected(self) -> None:
        node = self.current_node()
        if node is None:
            return
        what = "character" if node.is_character else "project"
        new_name, ok = QInputDialog.getText(self, f"Rename {what}", f"New name for {node.name}:", text=node.name)
        new_name = " ".join(new_name.split())
        if not ok or new_name == node.name:
            return
        catalog = self.catalog
        do: Callable[[], object]
        undo: Callable[[], object]
        if node.is_character:
            renamed = TreeNode(new_name, node.project)
            do = lambda: catalog.rename_character(node.name, new_name, node.project)  # noqa: E731
            undo = lambda: catalog.rename_character(new_name, node.name, node.project)  # noqa: E731
        else:
            renamed = TreeNode(new_name)
            do = lambda: catalog.rename_project(node.name, new_name)  # noqa: E731
            undo = lambda: catalog.rename_project(new_name, node.name)  # noqa: E731
        text = f"rename {node.name} to {new_name}"
        self.edits.make(LibraryEdit(text, do, undo, self._settler(renamed, node)), text)

    def delete_selected(self) -> None:
        node = self.current_node()
        if node is None:
            return
        catalog = self.catalog
        do: Callable[[], object]
        undo: Callable[[], object]
        if node.is_character:
            do = lambda: catalog.delete_character(node.name, node.project)  # noqa: E731
            undo = lambda: catalog.restore_character(node.name, node.project)  # noqa: E731
            after = TreeNode(node.project_name)  # a character row's project
        else:
            do = lambda: catalog.delete_project(node.name)  # noqa: E731
            undo = lambda: catalog.restore_project(node.name)  # noqa: E731
            after = None
        self.edits.make(
            LibraryEdit(f"delete {node.name}", do, undo, self._settler(after, node)),
            f"delete {node.name}",
            lambda: self._status(f"Moved {node.name} to the trash (Ctrl+Z puts it back)"),
        )

    def _on_edit_running(self, running: bool) -> None:
        if running:
            self.character_page.forget_pending_reads()

    def _settler(self, after_do: TreeNode | None, after_undo: TreeNode | None):
        """Refreshes the tree after an edit runs, selecting what the edit made (or brought back)."""

        def settle(undone: bool, refusal: str | None) -> None:
            if refusal:
                self._warn(refusal)
            target = after_undo if undone else after_do
            self.refresh(select=target, keep_current=target is None)
            self._emit_library_changed()

        return settle

    def _project_for_new_character(self) -> str | None:
        node = self.current_node()
        if node is not None:
            return node.project_name
        names = list(self.projects)
        if not names:
            QMessageBox.information(self, "Character Studio", "Create a project first (Ctrl+Shift+N): characters live in projects.")
            return None
        if len(names) == 1:
            return names[0]
        name, ok = QInputDialog.getItem(self, "New character", "Project:", names, 0, False)
        return name if ok else None

    # -- the tree -------------------------------------------------------------------------
    def refresh(self, select: TreeNode | None = None, keep_current: bool = True) -> None:
        """Reads the tree again off the GUI thread and rebuilds it when the answer comes, selecting
        `select`, else keeping the selection when it still exists (unless not `keep_current`).
        Everything is read before the tree is touched, so a refused read leaves the old tree."""
        if select is not None:
            self._targets = [select]
        elif not keep_current:
            self._targets = []
        # else: a target an earlier refresh still waits to select stands
        self._read_stamp += 1
        stamp, catalog = self._read_stamp, self.catalog
        self.reader.call(lambda: read_library(catalog), lambda contents: self._on_read(stamp, contents), self._on_read_failed)

    def _on_read_failed(self, error: Exception) -> None:
        self._warn(failure_line("read the library", error))

    def _on_read(self, stamp: int, contents: list[tuple[ProjectRecord, list[CharacterRecord]]]) -> None:
        if stamp != self._read_stamp:
            return  # a newer read is on its way
        targets, self._targets = self._targets, None
        if targets is None:
            current = self.current_node()
            targets = [current] if current is not None else []
        self.contents = contents
        self.projects = {project.name: project for project, _ in contents}
        self.tree.blockSignals(True)  # rebuilding would otherwise re-show the page per row
        try:
            self.tree.clear()
            for project, characters in contents:
                project_item = self._tree_item(TreeNode(project.name), project.name, "")
                project_item.setFlags(project_item.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
                self.tree.addTopLevelItem(project_item)
                for character in characters:
                    node = TreeNode(character.name, character.project)
                    project_item.addChild(self._tree_item(node, character.name, str(character.reference_count)))
                project_item.setExpanded(True)
            self.apply_filter()
            found = (self.find_item(node) for node in targets)
            self._set_current_item(next((item for item in found if item is not None and not item.isHidden()), None))
        finally:
            self.tree.blockSignals(False)
        self._loaded = True
        self._on_current_item_changed(self.tree.currentItem(), None)
        if self._reuse is not None:
            self._apply_reuse()
        self.refreshed.emit()

    def busy(self) -> bool:
        """Whether a read or an edit is under way (the page shows what it had until it answers)."""
        return self.reader.busy() or self.edits.running or self.character_page.busy()

    @staticmethod
    def _tree_item(node: TreeNode, label: str, count: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([label, count])
        item.setData(0, NODE_ROLE, node)
        item.setToolTip(0, label if node.is_character else f"project {label}")
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return item

    def find_item(self, node: TreeNode) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            project_item = self.tree.topLevelItem(i)
            if project_item is None:  # only out of range
                continue
            if project_item.data(0, NODE_ROLE) == node:
                return project_item
            for j in range(project_item.childCount()):
                child = project_item.child(j)
                if child is not None and child.data(0, NODE_ROLE) == node:
                    return child
        return None

    def current_node(self) -> TreeNode | None:
        item = self.tree.currentItem()
        return item.data(0, NODE_ROLE) if item is not None else None

    def select(self, node: TreeNode) -> bool:
        item = self.find_item(node)
        if item is None or item.isHidden():
            return False
        self.tree.setCurrentItem(item)
        return True

    def apply_filter(self) -> None:
        needle = self.search.text().strip().casefold()
        for i in range(self.tree.topLevelItemCount()):
            project_item = self.tree.topLevelItem(i)
            if project_item is None:  # only out of range
                continue
            matches = 0
            for j in range(project_item.childCount()):
                child = project_item.child(j)
                if child is None:
                    continue
                hidden = bool(needle) and needle not in child.text(0).casefold()
                child.setHidden(hidden)
                matches += not hidden
            # While searching, a project without a match is noise; otherwise even empty ones show.
            project_item.setHidden(bool(needle) and matches == 0)
        current = self.tree.currentItem()
        parent = current.parent() if current is not None else None
        if current is not None and (current.isHidden() or (parent is not None and parent.isHidden())):
            self._set_current_item(None)

    def _set_current_item(self, item: QTreeWidgetItem | None) -> None:
        # PySide6's stubs omit None, but Qt takes a null item: no current row.
        self.tree.setCurrentItem(item)  # type: ignore[arg-type]

    def _on_current_item_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        node = current.data(0, NODE_ROLE) if current is not None else None
        self._show(node)
        if node is not None and node != self._selected:
            self.context.settings.setValue(LAST_PROJECT_KEY, node.project_name)
            self.context.settings.setValue(LAST_CHARACTER_KEY, node.name if node.is_character else "")
            if node.is_character:
                self.context.signals.character_selected.emit(node.name, node.project)
        self._selected = node

    def _show(self, node: TreeNode | None) -> None:
        if node is not None and node.project is not None:  # a character row
            self.character_page.show_character(node.name, node.project)  # shown when it is read
            return
        if node is not None and node.name in self.projects:
            characters = next((c for p, c in self.contents if p.name == node.name), [])
            self.summary.show_project(self.projects[node.name], characters)
        else:
            self.summary.show_nothing()
        self.details.setCurrentWidget(self.summary)
        self.character_page.show_nothing()

    def _character_shown(self, character: CharacterRecord | None) -> None:
        """The character page's answer: its record, or None when it could not be read (e.g.
        deleted elsewhere; the page has warned)."""
        if character is not None:
            self.details.setCurrentWidget(self.character_page)
        else:
            self.summary.show_nothing()
            self.details.setCurrentWidget(self.summary)
        if self._reuse_selected is not None:
            self._finish_reuse()

    # -- other pages ----------------------------------------------------------------------
    def _emit_library_changed(self) -> None:
        self._emitting = True
        try:
            self.context.signals.library_changed.emit()
        finally:
            self._emitting = False

    def _library_changed_elsewhere(self) -> None:
        if not self._emitting:
            self.refresh()

    def reuse_request(self, request: dict) -> None:
        """Another page's "reuse parameters": select the request's character, fill its box, show it
        (once the tree and then the character are read)."""
        self._reuse = request
        if self._loaded and not self.reader.busy():
            self._apply_reuse()

    def _apply_reuse(self) -> None:
        request, self._reuse = self._reuse or {}, None
        names = list(request.get("characters") or []) + [i.get("character") for i in request.get("identities") or []]
        name = next((n for n in names if n), None)
        if name is not None:
            project = next(
                (i.get("project") for i in request.get("identities") or [] if i.get("character") == name and i.get("project")), None
            )
            project = project or self._project_of(name)
            if project is not None and not self.select(TreeNode(name, project)):
                self.search.clear()
                self.select(TreeNode(name, project))
        self._reuse_selected = request
        if not self.character_page.busy():  # else once the character is read (_character_shown)
            self._finish_reuse()

    def _finish_reuse(self) -> None:
        request, self._reuse_selected = self._reuse_selected or {}, None
        if self.character_page.character is None:
            self._status("Pick a character to reuse these parameters with")
            return
        self.character_page.load_request(request)
        self.context.signals.show_page.emit("library")

    def _project_of(self, name: str) -> str | None:
        current = self.current_node()
        if current is not None and current.is_character and current.name == name:
            return current.project
        owners = [p.name for p, characters in self.contents if any(c.name == name for c in characters)]
        return owners[0] if owners else None

    # -- state ----------------------------------------------------------------------------
    def restore_state(self, settings: QSettings) -> None:
        """Selects the project and character selected when the studio last closed."""
        splitter = settings.value(SPLITTER_KEY)
        if splitter is not None:
            self.splitter.restoreState(splitter)
        project = settings.value(LAST_PROJECT_KEY) or ""
        character = settings.value(LAST_CHARACTER_KEY) or ""
        if not project:
            return
        targets = ([TreeNode(character, project)] if character else []) + [TreeNode(project)]
        if self._loaded and not self.reader.busy():
            any(self.select(node) for node in targets)
        else:
            self._targets = targets  # selected when the tree is read

    def save_state(self, settings: QSettings) -> None:
        settings.setValue(SPLITTER_KEY, self.splitter.saveState())
        node = self.current_node()
        if node is not None:
            settings.setValue(LAST_PROJECT_KEY, node.project_name)
            settings.setValue(LAST_CHARACTER_KEY, node.name if node.is_character else "")

    def shutdown(self) -> None:
        self.character_page.shutdown()
        self.edits.wait()  # an edit under way lands before the library closes

    # -- helpers --------------------------------------------------------------------------
    def _warn(self, text: str) -> None:
        """A refusal or failure (one line, from studio/failures.py) the user can read, not a traceback."""
        QMessageBox.warning(self, "Character Studio", text)

    def _status(self, text: str) -> None:
        self.context.signals.status_message.emit(text)
