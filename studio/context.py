"""What every screen of the studio shares: the library, its catalog, the job queue, settings,
and the signals screens use to talk to each other without importing each other.

Screens are built with a `StudioContext` and never hold a database session: they call the
catalog, the queue and the other core services, which hand back plain records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from core.catalog.service import Catalog
from core.jobs.queue import JobQueue
from storage.library import Library


class StudioSignals(QObject):
    """The studio's own bus. Emitters do not know who listens; every payload is plain data."""

    library_changed = Signal()  # projects, characters or references were created, renamed, deleted, restored
    character_selected = Signal(str, str)  # (character name, project name)
    jobs_changed = Signal()  # a job was enqueued or its status was changed from the GUI
    job_finished = Signal(int)  # a job id the queue poller saw reach "done"
    generations_added = Signal(list)  # generation ids that just appeared (from finished jobs)
    models_changed = Signal()  # a model was registered, removed, made default
    open_scene = Signal(dict)  # a scene JSON to open in the scene composer
    add_to_scene = Signal(str, str)  # (character name, project name) to place in the scene composer
    reuse_request = Signal(dict)  # a GenerationRequest JSON to load into a character's generate box
    show_page = Signal(str)  # a page key of the main window ("library", "scene", "gallery", ...)
    status_message = Signal(str)  # a line for the status bar
    jobs_updated = Signal(list)  # every job as the poller last read it (JobRecords, display order)


@dataclass
class StudioContext:
    library: Library
    catalog: Catalog
    queue: JobQueue
    settings: QSettings
    signals: StudioSignals
    # Set by the StudioWindow: studio.job_poller.JobPoller (reads the queue off the GUI thread, emits
    # jobs_updated / job_finished / generations_added) and studio.worker_supervisor.WorkerSupervisor.
    poller: Any = None
    supervisor: Any = None

    @classmethod
    def open(cls, library: Library, settings: QSettings | None = None) -> StudioContext:
        # Tests hand in their own settings (an ini file in tmp) so they never touch the user's.
        return cls(
            library=library,
            catalog=Catalog(library),
            queue=JobQueue(library),
            settings=settings if settings is not None else QSettings(),
            signals=StudioSignals(),
        )
