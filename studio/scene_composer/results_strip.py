"""Renders under the canvas, as they finish: one tile per queued render while it runs (with the
worker's live preview when it has one), replaced by the rendered images when the job is done.
Double-clicking an image reopens the scene it was rendered from.

Its jobs are followed through the window's job poller (which reads off the GUI thread); images are
decoded off the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from core.generation.queries import get_generation
from core.jobs.queue import JobQueue, JobRecord
from storage.errors import LibraryError
from storage.schema import JobStatus
from studio.background import run_in_background
from studio.failures import failure_line
from studio.scene_composer.image_loader import ImageLoader

THUMB = QSize(112, 112)
JOB_ROLE = Qt.ItemDataRole.UserRole
GENERATION_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2


class ResultsStrip(QListWidget):
    result_opened = Signal(int, str)  # (generation id, image path): reopen its scene
    job_done = Signal(int, list)  # (job id, generation ids)
    job_failed = Signal(int, str)  # (job id, the job's error)

    def __init__(self, queue: JobQueue, parent=None):
        super().__init__(parent)
        self.queue = queue
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(THUMB)
        self.setGridSize(QSize(THUMB.width() + 16, THUMB.height() + 34))
        self.setFixedHeight(THUMB.height() + 58)
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setToolTip("Renders of this scene; double-click one to reopen its scene")
        self.pending: dict[int, QListWidgetItem] = {}  # job id -> its tile while it runs
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._image_loaded)
        self.itemDoubleClicked.connect(self._open)

    def track_job(self, job_id: int) -> None:
        item = QListWidgetItem("queued")
        item.setData(JOB_ROLE, job_id)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setToolTip(f"job {job_id}")
        self.insertItem(0, item)
        self.pending[job_id] = item

    def show_jobs(self, records: list[JobRecord]) -> None:
        """The window's job poller read the queue (off the GUI thread): follow this strip's jobs."""
        for job in records:
            item = self.pending.get(job.id)
            if item is None:
                continue
            job_id = job.id
            if job.status == JobStatus.DONE:
                self._finished(job_id, list(job.result.get("generations", [])))
            elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                item.setText(job.status)
                item.setToolTip(job.error or job.status)
                self._forget(job_id)
                self.job_failed.emit(job_id, job.error or job.status)
            else:
                percent = f" {100 * job.step // job.total}%" if job.total else ""
                item.setText(f"{job.status}{percent}")
                item.setToolTip(job.waiting or job.message or f"job {job_id}")
                if job.sample:
                    self.loader.load(("preview", job_id), job.sample, THUMB)

    def _forget(self, job_id: int) -> None:
        self.pending.pop(job_id, None)

    def _finished(self, job_id: int, generation_ids: list[int]) -> None:
        tile = self.pending.pop(job_id)
        library = self.queue.library

        def read() -> list:
            records = []
            for generation_id in generation_ids:
                try:
                    records.append(get_generation(library, int(generation_id)))
                except LibraryError:  # deleted meanwhile: the strip shows the others
                    continue
            return records

        run_in_background(
            read,
            lambda records: self._show_results(tile, job_id, generation_ids, records),
            lambda exc: tile.setText(failure_line("read the results", exc)),
        )

    def _show_results(self, tile: QListWidgetItem, job_id: int, generation_ids: list[int], records: list) -> None:
        row = self.row(tile)
        self.takeItem(row)
        for offset, record in enumerate(records):
            item = QListWidgetItem(f"#{record.id}" + ("  best" if record.best else ""))
            item.setData(GENERATION_ROLE, record.id)
            item.setData(PATH_ROLE, record.path)
            item.setToolTip(f"#{record.id}, seed {record.seed}, {record.width}×{record.height}\nDouble-click to reopen its scene")
            self.insertItem(row + offset, item)
            self.loader.load(("result", record.id), record.path, THUMB)
        self.job_done.emit(job_id, [int(g) for g in generation_ids])

    def _image_loaded(self, key: object, image: QImage) -> None:
        if image.isNull() or not isinstance(key, tuple):  # keys are ("preview" | "result", id)
            return
        kind, ident = key
        for row in range(self.count()):
            item = self.item(row)
            matches = item.data(JOB_ROLE) == ident if kind == "preview" else item.data(GENERATION_ROLE) == ident
            if matches:
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def results(self) -> list[int]:
        """The generation ids shown, left to right."""
        ids = [self.item(row).data(GENERATION_ROLE) for row in range(self.count())]
        return [i for i in ids if i is not None]

    def item_of(self, generation_id: int) -> QListWidgetItem | None:
        for row in range(self.count()):
            if self.item(row).data(GENERATION_ROLE) == generation_id:
                return self.item(row)
        return None

    def _open(self, item: QListWidgetItem) -> None:
        generation_id = item.data(GENERATION_ROLE)
        if generation_id is not None:
            self.result_opened.emit(int(generation_id), item.data(PATH_ROLE))

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, "Renders appear here (Ctrl+R renders the scene)")
