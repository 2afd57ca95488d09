"""The scene being composed: a core Scene, its undo stack, and where it was saved.

Widgets never change the scene directly: they compute the next scene (core.scene.edits)
and call `edit`, which pushes an undoable command. Every change, done or undone, goes out through
`changed(before, after)`, and the canvas and panels redraw from the scene they are handed.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from core.scene.edits import PresetSource, new_scene
from core.scene.model import Scene
from studio.scene_composer.commands import SceneEdit


class SceneDocument(QObject):
    changed = Signal(object, object)  # (scene before, scene after)

    def __init__(self, presets: PresetSource, parent: QObject | None = None):
        super().__init__(parent)
        self.presets = presets
        self.scene: Scene = new_scene()
        self.undo_stack = QUndoStack(self)
        # Where the scene lives in the library, once saved there or opened from there.
        self.saved_id: int | None = None
        self.saved_project: str | None = None

    def set_scene(self, scene: Scene) -> None:
        """Only the undo commands call this."""
        before, self.scene = self.scene, scene
        self.changed.emit(before, scene)

    def edit(self, after: Scene, text: str, merge_key: str | None = None) -> bool:
        """Makes `after` the scene as one undoable step; False when nothing changed."""
        if after == self.scene:
            return False
        self.undo_stack.push(SceneEdit(self, self.scene, after, text, merge_key))
        return True

    def open(self, scene: Scene, text: str, saved_id: int | None = None, saved_project: str | None = None) -> None:
        """Replaces the whole scene, undoably: the scene it replaces is one Ctrl+Z away."""
        self.saved_id, self.saved_project = saved_id, saved_project
        if not self.edit(scene, text):
            self.changed.emit(scene, scene)
