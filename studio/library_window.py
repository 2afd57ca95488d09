"""The library browser: projects and their characters on the left, the chosen one on the right.

It talks to the library only through `core.catalog.Catalog`, which hands back plain records, so
this window never holds a database session and never imports anything heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QAction, QFont, QIcon, QImage, QImageReader, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.catalog import Catalog
from core.records import CharacterRecord, ProjectRecord, ReferenceRecord
from storage.errors import LibraryError

THUMBNAIL_SIZE = 160
NODE_ROLE = Qt.ItemDataRole.UserRole


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


@lru_cache(maxsize=512)
def load_thumbnail(path: str, size: int = THUMBNAIL_SIZE) -> QImage:
    """Decodes straight to thumbnail size, so a large reference never costs a full decode.
    Caching by path is safe because the file store is content-addressed: a path's bytes never change."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()  # a null image when the file is missing or unreadable


def reference_tooltip(reference: ReferenceRecord) -> str:
    lines = [
        reference.original_name,
        f"{reference.width} × {reference.height}",
        f"view: {reference.view or '—'}",
        f"expression: {reference.expression or '—'}",
        f"outfit: {reference.outfit or '—'}",
    ]
    return "\n".join(lines)


def plain_label(text: str = "") -> QLabel:
    # Names and notes are user text: shown as typed, never interpreted as rich text.
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class ReferenceGrid(QListWidget):
    """A character's reference images as captioned thumbnails."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.setGridSize(QSize(THUMBNAIL_SIZE + 24, THUMBNAIL_SIZE + 40))
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def show_references(self, references: list[ReferenceRecord]) -> None:
        self.clear()
        for reference in references:
            image = load_thumbnail(reference.path)
            item = QListWidgetItem(reference.view or "untagged")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            item.setData(NODE_ROLE, reference.id)
            if image.isNull():
                item.setIcon(self.style().standardIcon(self.style().StandardPixmap.SP_MessageBoxWarning))
                item.setToolTip(f"cannot read {reference.path}")
            else:
                item.setIcon(QIcon(QPixmap.fromImage(image)))
                item.setToolTip(reference_tooltip(reference))
            self.addItem(item)


class DetailsPanel(QWidget):
    """The right-hand side: whatever is selected in the tree, read-only for now."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = plain_label()
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = plain_label()
        subtitle_font = QFont(self.subtitle.font())
        subtitle_font.setItalic(True)  # secondary, yet still readable (a disabled grey was too faint)
        self.subtitle.setFont(subtitle_font)
        self.trigger_word = plain_label()
        self.notes = plain_label()
        self.references_heading = QLabel("References")
        self.references = ReferenceGrid()

        fields = QFormLayout()
        fields.addRow("Trigger word:", self.trigger_word)
        fields.addRow("Notes:", self.notes)
        self.fields = QWidget()
        self.fields.setLayout(fields)
        fields.setContentsMargins(0, 0, 0, 0)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.fields)
        layout.addWidget(self.references_heading)
        layout.addWidget(self.references, 1)
        # Takes the slack only while the grid is hidden, so the text stays at the top.
        layout.addStretch(0)
        self.show_nothing()

    def show_nothing(self) -> None:
        self.title.setText("No character selected")
        self.subtitle.setText("Pick a character in the library, or create one with Library ▸ New character…")
        self._show_character_parts(False)

    def show_project(self, project: ProjectRecord) -> None:
        self.title.setText(project.name)
        count = f"{project.characters} character" + ("" if project.characters == 1 else "s")
        self.subtitle.setText(f"Project · {count}" + (f"\n{project.notes}" if project.notes else ""))
        self._show_character_parts(False)

    def show_character(self, character: CharacterRecord) -> None:
        self.title.setText(character.name)
        self.subtitle.setText(f"Character in {character.project}")
        self.trigger_word.setText(character.trigger_word or "—")
        self.notes.setText(character.notes or "—")
        self.references_heading.setText(f"References ({len(character.references)})")
        self.references.show_references(character.references)
        self._show_character_parts(True)

    def _show_character_parts(self, visible: bool) -> None:
        if not visible:
            self.references.clear()
        for widget in (self.fields, self.references_heading, self.references):
            widget.setVisible(visible)


class LibraryWindow(QMainWindow):
    def __init__(self, catalog: Catalog, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.catalog = catalog
        # Tests hand in their own settings so they never touch the user's.
        self.settings = settings if settings is not None else QSettings()
        self.projects: dict[str, ProjectRecord] = {}
        library_path = str(catalog.library.root)
        self.setWindowTitle(f"Character Studio — {library_path}")

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search characters…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.apply_filter)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Library", "References"])
        self.tree.setColumnCount(2)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, self.tree.header().ResizeMode.ResizeToContents)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.currentItemChanged.connect(self._on_current_item_changed)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.tree)

        self.details = DetailsPanel()
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 720])
        self.setCentralWidget(self.splitter)

        self._build_actions()
        self.statusBar().addPermanentWidget(QLabel(f"Library: {library_path}"))

        self.resize(1100, 700)
        self._restore_layout()
        self.refresh()

    # -- actions --------------------------------------------------------------------------
    def _build_actions(self) -> None:
        self.new_project_action = QAction("New project…", self)
        self.new_project_action.triggered.connect(self.new_project)
        self.new_character_action = QAction("New character…", self)
        self.new_character_action.triggered.connect(self.new_character)
        self.refresh_action = QAction("Refresh", self)
        self.refresh_action.setShortcut(QKeySequence("F5"))
        self.refresh_action.triggered.connect(lambda: self.refresh())  # not handed `checked`
        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.triggered.connect(self.close)

        library_menu = self.menuBar().addMenu("&Library")
        library_menu.addAction(self.new_project_action)
        library_menu.addAction(self.new_character_action)
        library_menu.addSeparator()
        library_menu.addAction(self.refresh_action)
        library_menu.addSeparator()
        library_menu.addAction(self.quit_action)

        toolbar = self.addToolBar("Library")
        toolbar.setObjectName("library-toolbar")  # saveState needs a name to restore it by
        toolbar.addAction(self.new_project_action)
        toolbar.addAction(self.new_character_action)
        toolbar.addAction(self.refresh_action)

    def new_project(self) -> None:
        name, ok = QInputDialog.getText(self, "New project", "Project name:")
        if not ok:
            return
        project = self._attempt(lambda: self.catalog.create_project(name))
        if project is not None:
            self.refresh(select=TreeNode(project.name))
            self.statusBar().showMessage(f"Created project {project.name}", 5000)

    def new_character(self) -> None:
        project = self._project_for_new_character()
        if project is None:
            return
        name, ok = QInputDialog.getText(self, "New character", f"Character name (in {project}):")
        if not ok:
            return
        character = self._attempt(lambda: self.catalog.create_character(name, project))
        if character is not None:
            self.refresh(select=TreeNode(character.name, character.project))
            self.statusBar().showMessage(f"Created character {character.name} in {character.project}", 5000)

    def _project_for_new_character(self) -> str | None:
        node = self.current_node()
        if node is not None:
            return node.project_name
        names = list(self.projects)
        if not names:
            QMessageBox.information(self, "Character Studio", "Create a project first: characters live in projects.")
            return None
        if len(names) == 1:
            return names[0]
        name, ok = QInputDialog.getItem(self, "New character", "Project:", names, 0, False)
        return name if ok else None

    # -- the tree -------------------------------------------------------------------------
    def refresh(self, select: TreeNode | None = None) -> None:
        """Reloads the tree from the library, keeping the selection when it still exists.
        Everything is read before the tree is touched, so a refused read leaves the old tree."""
        select = select or self.current_node()
        contents = self._attempt(self._read_library)
        if contents is None:
            return
        self.projects = {project.name: project for project, _ in contents}
        self.tree.blockSignals(True)  # rebuilding would otherwise re-show details per row
        try:
            self.tree.clear()
            for project, characters in contents:
                project_item = self._tree_item(TreeNode(project.name), project.name, "")
                self.tree.addTopLevelItem(project_item)
                for character in characters:
                    node = TreeNode(character.name, character.project)
                    project_item.addChild(self._tree_item(node, character.name, str(character.reference_count)))
                project_item.setExpanded(True)
        finally:
            self.tree.blockSignals(False)
        self.apply_filter()
        target = self.find_item(select) if select is not None else None
        if target is not None and not target.isHidden():
            self.tree.setCurrentItem(target)
        self._show_details(self.current_node())

    def _read_library(self) -> list[tuple[ProjectRecord, list[CharacterRecord]]]:
        return [(p, self.catalog.list_characters(p.name)) for p in self.catalog.list_projects()]

    @staticmethod
    def _tree_item(node: TreeNode, label: str, count: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([label, count])
        item.setData(0, NODE_ROLE, node)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return item

    def find_item(self, node: TreeNode) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            project_item = self.tree.topLevelItem(i)
            if project_item.data(0, NODE_ROLE) == node:
                return project_item
            for j in range(project_item.childCount()):
                if project_item.child(j).data(0, NODE_ROLE) == node:
                    return project_item.child(j)
        return None

    def current_node(self) -> TreeNode | None:
        item = self.tree.currentItem()
        return item.data(0, NODE_ROLE) if item is not None else None

    def apply_filter(self) -> None:
        needle = self.search.text().strip().casefold()
        for i in range(self.tree.topLevelItemCount()):
            project_item = self.tree.topLevelItem(i)
            matches = 0
            for j in range(project_item.childCount()):
                child = project_item.child(j)
                hidden = bool(needle) and needle not in child.text(0).casefold()
                child.setHidden(hidden)
                matches += not hidden
            # While searching, a project without a match is noise; otherwise even empty ones show.
            project_item.setHidden(bool(needle) and matches == 0)
        current = self.tree.currentItem()
        if current is not None and (current.isHidden() or (current.parent() and current.parent().isHidden())):
            self.tree.setCurrentItem(None)

    def _on_current_item_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        self._show_details(current.data(0, NODE_ROLE) if current is not None else None)

    def _show_details(self, node: TreeNode | None) -> None:
        if node is None:
            self.details.show_nothing()
        elif node.is_character:
            character = self._attempt(lambda: self.catalog.show_character(node.name, node.project))
            if character is None:
                self.details.show_nothing()
            else:
                self.details.show_character(character)
        elif node.name in self.projects:
            self.details.show_project(self.projects[node.name])
        else:
            self.details.show_nothing()

    # -- errors and layout ----------------------------------------------------------------
    def _attempt(self, call):
        """Runs a catalog call; a refusal becomes a warning the user can read, not a traceback."""
        try:
            return call()
        except LibraryError as refusal:
            QMessageBox.warning(self, "Character Studio", str(refusal))
            return None

    def _restore_layout(self) -> None:
        geometry = self.settings.value("library_window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("library_window/state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.value("library_window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event) -> None:
        self.settings.setValue("library_window/geometry", self.saveGeometry())
        self.settings.setValue("library_window/state", self.saveState())
        self.settings.setValue("library_window/splitter", self.splitter.saveState())
        super().closeEvent(event)
