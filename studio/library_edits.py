"""Library edits that undo: each holds the catalog call that makes it and the one that reverses it,
and `LibraryEdits` runs them off the GUI thread.

Deletes go to the trash, so undoing one restores from the trash; undoing a create deletes (to the
trash), and redoing it restores. An edit is made in the background and pushed on the stack only
once it succeeded (a refused edit never reaches the stack); `settle` then refreshes whatever shows
the library. Undo and redo run their call in the background too, and step the stack only when it
has answered: a refused undo or redo drops the edit from the stack (a name taken meanwhile, say)
rather than leave it to fail forever. The stack is stepped by `LibraryEdits` only (a
`LibraryEdit`'s own undo()/redo() do no work), and undo/redo are refused while any edit is under
way, so they always act on the stack as the user sees it. Edits run one at a time, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.background import run_in_background
from studio.failures import failure_line

# settle(undone, refusal): called after each run; `refusal` is the line to show for a refused call.
Settle = Callable[[bool, "str | None"], None]


class LibraryEdit(QUndoCommand):
    def __init__(self, text: str, do: Callable[[], object], undo: Callable[[], object], settle: Settle):
        super().__init__(text)
        self.do_call, self.undo_call, self.settle = do, undo, settle

    # QUndoStack calls these when LibraryEdits steps it, after the call has run in the background.
    def redo(self) -> None:
        pass

    def undo(self) -> None:
        pass


class LibraryEdits(QObject):
    """The undo stack of the library's edits and the edits under way. `warn(line)` shows a refusal."""

    running_changed = Signal(bool)

    def __init__(self, stack: QUndoStack, warn: Callable[[str], None], parent: QObject | None = None):
        super().__init__(parent)
        self.stack, self.warn = stack, warn
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # in the order they were asked for
        self._running = 0

    @property
    def running(self) -> bool:
        return self._running > 0

    def make(self, edit: LibraryEdit, doing: str, on_made: Callable[[], None] | None = None) -> None:
        """Makes `edit` in the background; pushes it once made (then `on_made()`), warns if refused."""
        self.make_then_push(edit.do_call, lambda _value: edit, doing, lambda _value: on_made() if on_made else None)

    def make_then_push(
        self,
        work: Callable[[], Any],
        edit_of: Callable[[Any], LibraryEdit],
        doing: str,
        on_made: Callable[[Any], None] | None = None,
    ) -> None:
        """Runs `work` in the background; its answer names the edit that it made (a create whose
        cleaned name the undo needs), which is pushed and settled. A refusal is warned of."""

        def made(value: Any) -> None:
            self._finished()
            edit = edit_of(value)
            self.stack.push(edit)  # its redo() does nothing: the edit is already made
            edit.settle(False, None)
            if on_made is not None:
                on_made(value)

        def refused(exc: Exception) -> None:
            self._finished()
            self.warn(failure_line(doing, exc))

        self._start(work, made, refused)

    def undo(self) -> None:
        if self.running or not self.stack.canUndo():
            return
        edit = self.stack.command(self.stack.index() - 1)
        if not isinstance(edit, LibraryEdit):  # the stack holds only LibraryEdits; Qt hands back QUndoCommand
            return
        self._step(edit, edit.undo_call, undone=True, step=self.stack.undo)

    def redo(self) -> None:
        if self.running or not self.stack.canRedo():
            return
        edit = self.stack.command(self.stack.index())
        if not isinstance(edit, LibraryEdit):
            return
        self._step(edit, edit.do_call, undone=False, step=self.stack.redo)

    def _step(self, edit: LibraryEdit, call: Callable[[], object], undone: bool, step: Callable[[], None]) -> None:
        what = f"{'undo' if undone else 'redo'} {edit.text()}"

        settle = edit.settle  # a refused edit is deleted as the stack steps past it

        def finish(refusal: str | None) -> None:
            self._finished()
            if refusal:
                edit.setObsolete(True)
            step()
            settle(undone, refusal)

        self._start(call, lambda _value: finish(None), lambda exc: finish(failure_line(what, exc)))

    def _start(self, work: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None]) -> None:
        self._running += 1
        if self._running == 1:
            self.running_changed.emit(True)
        run_in_background(work, on_done, on_error, pool=self.pool)

    def _finished(self) -> None:
        self._running -= 1
        if self._running == 0:
            self.running_changed.emit(False)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Blocks until the edits under way are made (at shutdown); their answers still arrive later."""
        return self.pool.waitForDone(timeout_ms)
