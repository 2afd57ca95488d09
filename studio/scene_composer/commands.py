"""The one kind of undo command the composer needs: the scene before an edit and after it.

A scene is an immutable value, so undo puts the old one back exactly. Edits that come in a
stream (a joint or a box dragged, a spin box stepped) carry a merge key: consecutive commands
with the same key become one, so one drag is one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from core.scene.model import Scene

if TYPE_CHECKING:
    from studio.scene_composer.document import SceneDocument

MERGEABLE_ID = 7301  # any fixed number: Qt only merges commands whose id() is equal and not -1


class SceneEdit(QUndoCommand):
    def __init__(self, document: SceneDocument, before: Scene, after: Scene, text: str, merge_key: str | None = None):
        super().__init__(text)
        self.document = document
        self.before = before
        self.after = after
        self.merge_key = merge_key

    def redo(self) -> None:
        self.document.set_scene(self.after)

    def undo(self) -> None:
        self.document.set_scene(self.before)

    def id(self) -> int:
        return MERGEABLE_ID if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SceneEdit) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        return True
