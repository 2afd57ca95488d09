"""Library edits that undo: each holds the catalog call that makes it and the one that reverses it.

Deletes go to the trash, so undoing one restores from the trash; undoing a create deletes (to the
trash), and redoing it restores. An edit is made before it is pushed (a refused edit never reaches
the stack); `settle` then refreshes whatever shows the library.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from storage.errors import LibraryError

# settle(undone, refusal): called after each run; `refusal` is the message of a refused call.
Settle = Callable[[bool, "str | None"], None]


class LibraryEdit(QUndoCommand):
    def __init__(self, text: str, do: Callable[[], object], undo: Callable[[], object], settle: Settle):
        super().__init__(text)
        self._do, self._undo, self._settle = do, undo, settle
        self._made = False

    def make(self) -> str | None:
        """Makes the edit now; returns why it was refused (then it must not be pushed)."""
        try:
            self._do()
        except LibraryError as refusal:
            return str(refusal)
        self.mark_made()
        return None

    def mark_made(self) -> None:
        """The edit was made by the caller (e.g. a create, whose cleaned name it needed first)."""
        self._made = True
        self._settle(False, None)

    def redo(self) -> None:
        if self._made:  # QUndoStack.push() calls redo(): the first time, the edit is already made
            self._made = False
            return
        self._run(self._do, undone=False)

    def undo(self) -> None:
        self._run(self._undo, undone=True)

    def _run(self, call, undone: bool) -> None:
        refusal = None
        try:
            call()
        except LibraryError as problem:
            # E.g. a name taken meanwhile: the stack drops this edit rather than retry it forever.
            refusal = str(problem)
            self.setObsolete(True)
        self._settle(undone, refusal)
