"""The scene composer page against a real library, driven as a user would: drops of real MIME data
onto the canvas, mouse drags on the view's viewport, the undo stack, and a render through a real
worker on tiny models whose result reopens its scene."""

from __future__ import annotations

import json
import os
import threading

# Qt must never try to open a display in tests (conftest sets this too; this module may run alone).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from core.catalog.service import Catalog
from core.demo.library import DEMO_PROJECT, build_demo_library
from core.pose.presets import PresetLibrary
from core.pose.skeleton import BODY_KEYPOINTS
from core.scene import edits
from core.scene.model import Scene
from storage.library import open_library
from studio.context import StudioContext
from studio.scene_composer.canvas import MIME_CHARACTER, MIME_POSE
from studio.scene_composer.page import ScenePage

RIGHT_WRIST = BODY_KEYPOINTS.index("right_wrist")
PRESETS = PresetLibrary()


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene-page") / "library"
    with open_library(root) as library:
        build_demo_library(Catalog(library))
    return root


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *rest: shown.append(text))
    return shown


@pytest.fixture
def context(demo_root, tmp_path, qapp):
    from studio.job_poller import JobPoller

    library = open_library(demo_root)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    context = StudioContext.open(library, settings)
    # The window's job poller: the results strip follows its renders through it.
    context.poller = JobPoller(context.queue, context.signals, interval_ms=100)
    context.poller.start()
    yield context
    context.poller.stop()
    library.close()


@pytest.fixture
def page(qtbot, context, warnings):
    page = ScenePage(context, PRESETS)
    qtbot.addWidget(page)
    page.resize(1400, 900)
    page.show()
    qtbot.waitExposed(page)
    settle(qtbot, page)
    yield page


def settle(qtbot, page: ScenePage) -> None:
    """Waits until the page's reads and writes (off the GUI thread) have answered."""
    qtbot.waitUntil(lambda: not page.busy(), timeout=10_000)


# -- driving the canvas ---------------------------------------------------------------------------
def view_point(page: ScenePage, x: float, y: float) -> QPoint:
    return page.canvas.mapFromScene(QPointF(x, y))


def drop(page: ScenePage, mime: str, payload: dict, x: float, y: float) -> list[int]:
    """A drag that enters the canvas, moves and drops at scene point (x, y), as Qt delivers one.
    Returns the placements shown as the drop's target while the drag hovered."""
    data = QMimeData()
    data.setData(mime, json.dumps(payload).encode("utf-8"))
    viewport = page.canvas.viewport()
    at = view_point(page, x, y)  # a QPoint: PySide6 6.11 takes no QPointF for drag enter/move events
    copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (
        QDragEnterEvent(at, copy, data, left, none),
        QDragMoveEvent(at, copy, data, left, none),
        QDropEvent(at, copy, data, left, none, QEvent.Type.Drop),
    ):
        QApplication.sendEvent(viewport, event)
        assert event.isAccepted(), event.type()
        if event.type() == QEvent.Type.DragMove:
            lit = [i for i, item in enumerate(page.canvas.placement_items) if item.drop_target]
    return lit


def drop_character(page: ScenePage, name: str, x: float, y: float) -> list[int]:
    return drop(page, MIME_CHARACTER, {"name": name, "project": DEMO_PROJECT}, x, y)


def drop_pose(page: ScenePage, name: str, x: float, y: float) -> list[int]:
    return drop(page, MIME_POSE, {"name": name}, x, y)


def mouse_drag(page: ScenePage, start: QPoint, end: QPoint, steps: int = 5) -> None:
    viewport = page.canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, steps + 1):
        QTest.mouseMove(viewport, start + (end - start) * step / steps)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def scene_json(page: ScenePage) -> dict:
    return page.document.scene.to_json()


def joint_on_screen(page: ScenePage, index: int, joint: int) -> QPoint:
    handle = page.canvas.placement_items[index].joints[joint]
    assert handle.isVisible()
    return page.canvas.mapFromScene(handle.scenePos())


def keypoint(pose: dict, joint: int) -> tuple[float, float]:
    flat = pose["pose_keypoints_2d"]
    return flat[3 * joint], flat[3 * joint + 1]


def set_prompt(page: ScenePage, text: str) -> None:
    field = page.properties.prompt
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)


# -- placing characters and poses -------------------------------------------------------------------
def test_a_character_dropped_on_the_canvas_stands_where_it_was_dropped(page):
    drop_character(page, "Aria", 200, 260)

    [placement] = scene_json(page)["placements"]
    x, y, w, h = placement["box"]
    assert (placement["character"], placement["project"], placement["pose"]) == ("Aria", DEMO_PROJECT, "standing")
    assert x <= 200 <= x + w and y <= 260 <= y + h
    item = page.canvas.placement_items[0]
    assert item.person is not None and sum(j.isVisible() for j in item.joints) == 18
    assert page.canvas.selected == 0 and page.properties.character.currentData() == ("Aria", DEMO_PROJECT)

    set_prompt(page, "a knight in a courtyard")
    data = scene_json(page)
    assert data["prompt"] == "a knight in a courtyard"
    assert Scene.from_json(data).validate().to_json() == data


def test_a_pose_dropped_on_a_character_changes_its_skeleton(page):
    drop_character(page, "Aria", 300, 256)
    standing = page.canvas.placement_items[0].person
    x, y, w, h = page.document.scene.placements[0].box

    assert drop_pose(page, "guard stance", x + w / 2, y + h / 2) == [0]  # lit while the pose hovered it

    assert not page.canvas.placement_items[0].drop_target
    assert scene_json(page)["placements"][0]["pose"] == "guard stance"
    guard = page.canvas.placement_items[0].person
    assert guard != standing
    assert guard == edits.placed_person(page.document.scene.placements[0], PRESETS)
    page.undo_action.trigger()
    assert scene_json(page)["placements"][0]["pose"] == "standing"
    assert page.canvas.placement_items[0].person == standing


def test_a_two_person_pose_on_empty_canvas_places_the_two_most_recent_characters(page, qtbot):
    drop_character(page, "Aria", 640, 256)
    drop_character(page, "Kael", 660, 256)  # placed last: suggested first

    drop_pose(page, "punch landing", 200, 256)
    qtbot.waitUntil(lambda: page.pair_dialog is not None and page.pair_dialog.isVisible())
    dialog = page.pair_dialog
    assert dialog.chosen() == [("Kael", DEMO_PROJECT), ("Aria", DEMO_PROJECT)]
    QTest.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)

    data = scene_json(page)
    placed = [(p["character"], p["pose"]) for p in data["placements"]]
    assert placed == [("Aria", "standing"), ("Kael", "standing"), ("Kael", "punch landing#0"), ("Aria", "punch landing#1")]
    first, second = data["placements"][2]["box"], data["placements"][3]["box"]
    assert first[0] < 200 < second[0] + second[2]  # the pair is centred on the drop
    assert page.document.undo_stack.undoText() == "Place Kael and Aria: punch landing"
    set_prompt(page, "a fight")
    Scene.from_json(scene_json(page)).validate()

    page.undo_action.trigger()
    page.undo_action.trigger()
    assert [p.character for p in page.document.scene.placements] == ["Aria", "Kael"]


def test_a_two_person_pose_on_a_character_poses_it_and_its_neighbour(page):
    drop_character(page, "Aria", 200, 256)
    drop_character(page, "Kael", 560, 256)
    x, y, w, h = page.document.scene.placements[1].box
    drop_pose(page, "sword clash", x + w / 2, y + h / 2)
    # Left to right as the preset has them, whichever of the two the pose was dropped on.
    people = PRESETS.skeleton("sword clash").people
    left = min((0, 1), key=lambda n: people[n].bounding_box()[0])
    assert [p.pose for p in page.document.scene.placements] == [f"sword clash#{left}", f"sword clash#{1 - left}"]
    assert page.document.undo_stack.count() == 3  # two placements, one pose


# -- mouse edits and undo ---------------------------------------------------------------------------
def test_dragging_a_joint_moves_that_keypoint_in_one_undo_step(page):
    drop_character(page, "Aria", 384, 256)
    before = scene_json(page)
    steps_before = page.document.undo_stack.count()
    start = joint_on_screen(page, 0, RIGHT_WRIST)
    end = start + QPoint(25, -60)  # the wrist raised towards the chest: inside the figure

    mouse_drag(page, start, end)

    after = scene_json(page)
    pose = after["placements"][0]["pose"]
    assert isinstance(pose, dict)
    target = page.canvas.mapToScene(end)
    assert keypoint(pose, RIGHT_WRIST) == pytest.approx((target.x(), target.y()), abs=0.2)
    # Only that keypoint moved; the skeleton drawn is the one that renders.
    unmoved = [j for j in range(18) if j != RIGHT_WRIST]
    standing = edits.placed_person(Scene.from_json({**before, "prompt": "x"}).placements[0], PRESETS)
    assert [c for j in unmoved for c in keypoint(pose, j)] == pytest.approx(
        [c for j in unmoved for c in (standing.body[j].x, standing.body[j].y)]
    )
    # The figure stays where it stood and the joint under the pointer (the box follows the figure).
    drawn = page.canvas.placement_items[0].person
    assert (drawn.body[RIGHT_WRIST].x, drawn.body[RIGHT_WRIST].y) == pytest.approx((target.x(), target.y()), abs=1.0)
    neck = BODY_KEYPOINTS.index("neck")
    assert (drawn.body[neck].x, drawn.body[neck].y) == pytest.approx((standing.body[neck].x, standing.body[neck].y), abs=1.0)
    assert page.document.undo_stack.count() == steps_before + 1

    page.canvas.setFocus()
    QTest.keyClick(page.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert scene_json(page) == before
    assert page.canvas.placement_items[0].person == standing
    QTest.keyClick(page.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert scene_json(page) == after


def test_moving_and_resizing_a_box_with_the_mouse(page):
    drop_character(page, "Aria", 300, 256)
    x, y, w, h = page.document.scene.placements[0].box
    grab = view_point(page, x + 0.08 * w, y + 0.05 * h)  # inside the box, away from the joints
    mouse_drag(page, grab, grab + QPoint(60, 20))
    moved = page.document.scene.placements[0].box
    delta = page.canvas.mapToScene(grab + QPoint(60, 20)) - page.canvas.mapToScene(grab)
    assert (moved[0] - x, moved[1] - y) == (pytest.approx(delta.x(), abs=1), pytest.approx(delta.y(), abs=1))
    assert moved[2:] == (w, h)

    corner = page.canvas.placement_items[0].corners["bottom-right"]
    assert corner.isVisible()
    start = page.canvas.mapFromScene(corner.scenePos())
    mouse_drag(page, start, start + QPoint(40, -30))
    resized = page.document.scene.placements[0].box
    assert resized[:2] == moved[:2] and resized[2] > w and resized[3] < h
    assert page.document.undo_stack.count() == 3  # place, move, resize

    page.undo_action.trigger()
    assert page.document.scene.placements[0].box == moved


def test_mirror_and_z_order_are_undoable(page):
    drop_character(page, "Aria", 300, 256)
    drop_character(page, "Kael", 380, 256)
    page.drop_pose("pointing", 0, QPointF())
    original = scene_json(page)
    before = page.canvas.placement_items[0].person

    page.canvas.select(0)
    page.properties.mirror.click()
    mirrored = page.canvas.placement_items[0].person
    x, _, w, _ = page.document.scene.placements[0].box
    axis = x + w / 2
    right, left = BODY_KEYPOINTS.index("right_wrist"), BODY_KEYPOINTS.index("left_wrist")
    assert mirrored.body[right].x == pytest.approx(2 * axis - before.body[left].x)
    assert mirrored.body[left].y == pytest.approx(before.body[right].y)

    assert page.canvas.placement_items[0].zValue() < page.canvas.placement_items[1].zValue()
    assert not page.properties.backward.isEnabled()
    page.properties.forward.click()
    assert [p["z"] for p in scene_json(page)["placements"]] == [1, 0]
    assert page.canvas.placement_items[0].zValue() > page.canvas.placement_items[1].zValue()

    page.undo_action.trigger()
    page.undo_action.trigger()
    assert scene_json(page) == original
    page.redo_action.trigger()
    assert page.canvas.placement_items[0].person == mirrored


def test_placement_properties_are_edits(page):
    drop_character(page, "Kael", 300, 256)
    panel = page.properties
    panel.identity.setValue(1.1)
    panel.identity.setValue(1.2)  # steps of one spin box merge into one undo step
    panel.method.setCurrentText("none")
    panel.placement_prompt.setText("green cloak, recoiling")
    panel.placement_prompt.editingFinished.emit()
    placement = scene_json(page)["placements"][0]
    assert (placement["identity_scale"], placement["method"], placement["prompt"]) == (1.2, "none", "green cloak, recoiling")
    assert page.document.undo_stack.count() == 4
    page.undo_action.trigger()
    page.undo_action.trigger()
    page.undo_action.trigger()
    assert scene_json(page)["placements"][0]["identity_scale"] == 0.7
    assert panel.identity.value() == 0.7


def test_scenes_save_to_the_library_and_to_files(page, tmp_path, warnings, qtbot):
    drop_character(page, "Aria", 300, 256)
    assert not page.save_to_library(DEMO_PROJECT, "duel")
    assert "needs a prompt" in warnings[-1]
    set_prompt(page, "a duel at dawn")
    from PIL import Image

    courtyard = tmp_path / "courtyard.png"
    Image.new("RGB", (300, 200), (200, 180, 120)).save(courtyard)
    page.set_background(str(courtyard))
    qtbot.waitUntil(lambda: not page.canvas.background.pixmap().isNull())
    assert page.canvas.background.pixmap().size().toTuple() == (768, 512)  # stretched as the render stretches it
    assert page.properties.background_label.text() == "courtyard.png"
    with qtbot.waitSignal(page.saved, timeout=10_000):
        assert page.save_to_library(DEMO_PROJECT, "duel")
    saved = scene_json(page)
    assert saved["background"].startswith("files/")  # kept in the library, so it reopens anywhere
    with qtbot.waitSignal(page.saved, timeout=10_000):
        assert page.save_file(str(tmp_path / "duel.json"))

    page.new_scene()
    assert scene_json(page)["placements"] == []
    with qtbot.waitSignal(page.opened, timeout=10_000):
        page.open_from_library("duel", DEMO_PROJECT)
    assert {**scene_json(page), "name": None} == saved and page.document.saved_id is not None
    page.new_scene()
    with qtbot.waitSignal(page.opened, timeout=10_000):
        page.open_file(str(tmp_path / "duel.json"))
    assert scene_json(page) == saved
    page.undo_action.trigger()  # opening is an edit too: the scene before is one undo away
    assert scene_json(page)["placements"] == []


def test_pose_panel_filters_by_tag_and_search(page):
    panel = page.poses
    assert "punch landing" in panel.visible_names() and "standing" in panel.visible_names()
    assert panel.items["punch landing"].text() == "punch landing\n2 people"
    panel.tag.setCurrentText("two-person")
    assert set(panel.visible_names()) == {p.name for p in PRESETS.list(tag="two-person")}
    panel.search.setText("sword")
    assert panel.visible_names() == ["sword clash"]
    mime = panel.list.mimeData([panel.items["sword clash"]])
    assert json.loads(bytes(mime.data(MIME_POSE)).decode()) == {"name": "sword clash"}


def test_open_scene_signal_from_the_gallery_loads_it(page, context):
    shown: list[str] = []
    context.signals.show_page.connect(shown.append)
    scene = {
        "size": [512, 512],
        "prompt": "two fighters",
        "placements": [
            {"character": "Aria", "project": DEMO_PROJECT, "box": [10, 10, 200, 400], "pose": "jab"},
            {"character": "Kael", "project": DEMO_PROJECT, "box": [260, 10, 200, 400], "pose": "block", "z": 1},
        ],
    }
    context.signals.open_scene.emit(scene)
    assert [p.pose for p in page.document.scene.placements] == ["jab", "block"]
    assert len(page.canvas.placement_items) == 2 and shown == ["scene"]


# -- rendering through a worker -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(demo_root):
    """A tiny SD1.5 checkpoint, IP-Adapter and OpenPose ControlNet registered in the library."""
    import torch

    from core.common.quiet import quiet_libraries
    from core.demo.tiny_models import build_tiny_model_set
    from core.models.registry import ModelRegistry

    quiet_libraries()
    torch.set_num_threads(1)  # tiny models; spares the machine OpenMP's spinning
    paths = build_tiny_model_set(demo_root.parent / "models", "sd15")
    with open_library(demo_root) as library:
        registry = ModelRegistry(library)
        for path, options in (
            (paths.checkpoint, {"name": "tiny"}),
            (paths.ip_adapter, {}),
            (paths.controlnet, {"control_type": "openpose"}),
        ):
            registry.add(path, **options)
    return paths


def run_worker(library) -> threading.Thread:
    import core.scene.jobs  # noqa: F401 - imported up front, as the worker does when it loads its handlers
    from core.jobs.worker import Worker

    worker = Worker(library, device="cpu", poll_interval=0.05, progress_interval=0.05, stop_check_interval=0.02)
    thread = threading.Thread(target=worker.run, kwargs={"until_idle": True}, daemon=True)
    thread.start()
    return thread


def test_render_queues_a_scene_job_whose_result_reopens_its_scene(tiny_models, page, context, qtbot):
    from PIL import Image

    from core.generation.queries import get_generation

    assert page.properties.base.findText("tiny") > 0
    page.properties.width_spin.setValue(128)
    page.properties.height_spin.setValue(64)
    page.properties.steps.setValue(2)
    page.properties.seed.setText("5")
    page.properties.seed.editingFinished.emit()
    page.best_of.setValue(2)
    drop_character(page, "Aria", 32, 32)
    page.properties.method.setCurrentText("ip-adapter")
    drop_character(page, "Kael", 96, 32)
    page.properties.method.setCurrentText("none")
    drop_pose(page, "punch landing", 96, 32)  # on Kael: he and Aria, his neighbour, take the two people
    set_prompt(page, "two fighters")
    rendered = scene_json(page)
    queued: list[bool] = []
    context.signals.jobs_changed.connect(lambda: queued.append(True))

    page.canvas.setFocus()
    with qtbot.waitSignal(page.render_queued, timeout=10_000):  # queued off the GUI thread
        QTest.keyClick(page.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    [job_id] = page.results.pending
    job = context.queue.get(job_id)
    assert (job.kind, job.status, job.character) == ("scene", "queued", "Aria") and queued == [True]
    assert job.payload["scene"] == rendered

    worker = run_worker(context.library)
    qtbot.waitUntil(lambda: len(page.results.results()) == 2, timeout=120_000)
    worker.join(timeout=30)
    job = context.queue.get(job_id)
    assert job.status == "done", job.error
    assert job.result["generations"] == page.results.results()
    records = [get_generation(context.library, g) for g in page.results.results()]
    assert [r.seed for r in records] == [5, 6] and sum(r.best for r in records) == 1
    assert all(r.characters == ["Aria", "Kael"] and Image.open(r.path).size == (128, 64) for r in records)
    second = page.results.item_of(records[1].id)
    qtbot.waitUntil(lambda: not second.icon().isNull())

    page.new_scene()
    assert page.document.scene.placements == ()
    rect = page.results.visualItemRect(second)
    with qtbot.waitSignal(page.opened, timeout=10_000):  # the scene is read from the PNG off the GUI thread
        for click in (QTest.mouseClick, QTest.mouseDClick):  # a double-click as Qt sees one: a click, then the second
            click(page.results.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
    assert scene_json(page) == {**rendered, "seed": 6}
    assert len(page.canvas.placement_items) == 2 and page.properties.seed.text() == "6"


def test_a_render_that_cannot_run_says_why_on_its_tile(page, context, qtbot, tmp_path):
    import core.scene.jobs  # noqa: F401
    from core.jobs.worker import Worker

    drop_character(page, "Aria", 300, 256)
    page.drop_pose("jab", 0, QPointF())
    page.document.edit(edits.change_placement(page.document.scene, 0, method="none"), "no identity")
    set_prompt(page, "a jab")
    page.properties.base.addItem("no-such-model")
    page.properties.base.setCurrentText("no-such-model")
    with qtbot.waitSignal(page.render_queued, timeout=10_000) as queued:
        page.render_scene()
    job_id = queued.args[0]
    failures: list[str] = []
    page.results.job_failed.connect(lambda job, error: failures.append(error))
    Worker(context.library, device="cpu", poll_interval=0.05).run(until_idle=True)
    qtbot.waitUntil(lambda: bool(failures), timeout=10_000)
    job = context.queue.get(job_id)
    assert job.status == "failed" and "no-such-model" in job.error and "Traceback" not in job.error
    assert page.results.item(0).text() == "failed" and "no-such-model" in page.results.item(0).toolTip()


class StoppableJob:
    """The JobContext a worker hands a handler, recording progress; it asks the handler to stop
    (as a worker shutting down does) once `stop_after` checkpoints are recorded."""

    def __init__(self, library, payload: dict, work_dir, service, stop_after: int | None = None, resume=None):
        self.job_id, self.kind, self.payload, self.library = 1, "scene", payload, library
        self.work_dir, self.device, self.precision = work_dir, "cpu", "auto"
        self.resume_step, self.resume_checkpoint = resume or (0, None)
        self.service, self.stop_after = service, stop_after
        self.checkpoints: list[tuple[int, object]] = []

    def progress(self, step, total, loss=None, sample=None, message=None, checkpoint=None) -> None:
        if checkpoint is not None:
            self.checkpoints.append((step, checkpoint))

    def stop_requested(self):
        return "preempt" if self.stop_after is not None and len(self.checkpoints) >= self.stop_after else None

    def generation_service(self):
        return self.service


def test_a_stopped_scene_job_resumes_with_its_next_image(tiny_models, context, tmp_path):
    from core.generation.queries import get_generation
    from core.generation.service import GenerationService
    from core.jobs.context import JobStopped
    from core.scene.jobs import run_scene

    scene = Scene.from_json(
        {
            "size": [64, 64],
            "prompt": "a knight",
            "seed": 11,
            "steps": 2,
            "placements": [{"character": "Aria", "project": DEMO_PROJECT, "box": [8, 4, 40, 56], "pose": "jab", "method": "none"}],
        }
    )
    payload = {"scene": scene.to_json(), "best_of": 2, "base": None, "scene_id": None}
    service = GenerationService(context.library, device="cpu")
    first = StoppableJob(context.library, payload, tmp_path, service, stop_after=1)
    with pytest.raises(JobStopped):
        run_scene(first)
    [(step, checkpoint)] = first.checkpoints
    assert step == 2

    again = StoppableJob(context.library, payload, tmp_path, service, resume=(step, checkpoint))
    result = run_scene(again)
    records = [get_generation(context.library, g) for g in result["generations"]]
    assert [r.seed for r in records] == [11, 12]  # the first image kept, only the second rendered now
    assert len(again.checkpoints) == 1 and result["best"] in result["generations"]
    assert len({r.batch_id for r in records}) == 1 and sum(r.best for r in records) == 1


# -- how the skeleton looks at any zoom -------------------------------------------------------------
@pytest.mark.parametrize("size", [(128, 64), (1024, 576)])
def test_joints_keep_their_size_on_screen_whatever_the_scene_size(page, size):
    """A 128x64 scene is zoomed in ~4x, a 1024x576 one shrunk: the joint dots stay ~10 px with a
    wider ring that takes a press, and nothing is drawn in scene units around a joint (at 4x the
    render's 4-pixel joint dots would be blobs covering the figure)."""
    page.open_scene(edits.new_scene(size), "New scene")
    drop_character(page, "Aria", size[0] / 2, size[1] / 2)
    canvas = page.canvas
    zoom = canvas.transform().m11()
    assert zoom > 3 if size == (128, 64) else zoom < 1
    item = canvas.placement_items[0]
    for handle in item.joints:
        on_screen = handle.deviceTransform(canvas.viewportTransform())
        assert 9 <= on_screen.mapRect(handle.dot()).width() <= 12
        assert on_screen.map(handle.shape()).boundingRect().width() >= 16

    # Just outside the wrist's dot, on the side away from the body, the skeleton draws nothing.
    neck, wrist = (item.person.body[BODY_KEYPOINTS.index(name)] for name in ("neck", "right_wrist"))
    past = canvas.mapFromScene(QPointF(wrist.x, wrist.y)) + QPoint(-13 if wrist.x < neck.x else 13, 0)
    with_skeleton = canvas.viewport().grab().toImage().pixelColor(past)
    item.skeleton.hide()
    for handle in item.joints:
        handle.hide()
    without = canvas.viewport().grab().toImage().pixelColor(past)
    assert with_skeleton == without
    canvas.sync(None, page.document.scene)  # shows them again

    # A press off the joint's centre, inside its ring, still takes the joint. Off on the side away
    # from its nearest neighbour: zoomed in on a small scene, the hip's ring reaches the wrist's.
    steps = page.document.undo_stack.count()
    centre = joint_on_screen(page, 0, RIGHT_WRIST)
    shown = page.canvas.placement_items[0].joints  # as synced again above
    others = [joint_on_screen(page, 0, j) for j in range(len(shown)) if j != RIGHT_WRIST and shown[j].isVisible()]
    nearest = min(others, key=lambda p: (p - centre).manhattanLength())
    start = centre + QPoint(6 if nearest.x() <= centre.x() else -6, 0)  # sideways: the drag below is vertical
    mouse_drag(page, start, start + QPoint(0, -30))
    assert page.document.undo_stack.undoText() == "Move Aria's right wrist"
    assert page.document.undo_stack.count() == steps + 1
    moved = keypoint(scene_json(page)["placements"][0]["pose"], RIGHT_WRIST)
    assert moved[1] == pytest.approx(wrist.y - 30 / zoom, abs=1 / zoom + 0.2)


# -- adding characters without the library tab, resizing, labels -------------------------------------
def test_the_character_menu_places_a_library_character_at_the_canvas_centre(page, qtbot):
    menu = page.character_menu
    entries = {action.data(): action for action in menu.actions() if action.data()}
    assert ("Aria", DEMO_PROJECT) in entries and page.add_character_button.menu() is menu
    entries[("Kael", DEMO_PROJECT)].trigger()
    placements = page.document.scene.placements
    assert [(p.character, p.project) for p in placements] == [("Kael", DEMO_PROJECT)]
    x, y, w, h = placements[0].box
    width, height = page.document.scene.size
    assert (x + w / 2, y + h / 2) == pytest.approx((width / 2, height / 2), abs=1)
    assert placements[0] == edits.new_character_placement(
        edits.new_scene(page.document.scene.size), "Kael", DEMO_PROJECT, (width / 2, height / 2), PRESETS,
        page.characters[("Kael", DEMO_PROJECT)],
    )  # fmt: skip
    assert page.canvas.selected == 0
    assert page.document.undo_stack.undoText() == "Place Kael"

    # Another page's "Add to scene" arrives on the bus and is placed once the choices are read.
    page.context.signals.add_to_scene.emit("Aria", DEMO_PROJECT)
    settle(qtbot, page)
    assert [p.character for p in page.document.scene.placements] == ["Kael", "Aria"]


def test_a_smaller_canvas_scales_the_characters_with_it(page):
    drop_character(page, "Aria", 600, 256)
    drop_character(page, "Kael", 150, 256)
    before = page.document.scene
    assert before.size == (768, 512)
    page.properties.width_spin.setValue(384)
    page.properties.height_spin.setValue(256)
    after = page.document.scene
    assert after.size == (384, 256)
    for old, new in zip(before.placements, after.placements):
        x, y, w, h = new.box
        assert 0 <= x and 0 <= y and x + w <= 384 and y + h <= 256, new.box
        assert new.box == pytest.approx(tuple(v / 2 for v in old.box), abs=1)
    page.document.undo_stack.undo()
    assert page.document.scene == before  # the two steps of one resize are one undo step


@pytest.mark.parametrize("size", [(768, 512), (2048, 2048)])
def test_a_name_label_never_covers_the_head_joints(page, size):
    """The name sits outside the box: over its top edge, or under its bottom edge where the view
    has no room above (a box at the top of a zoomed-out scene), and always on the view."""
    head = [BODY_KEYPOINTS.index(name) for name in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    width, height = size
    page.open_scene(edits.new_scene(size), "New scene")
    drop_character(page, "Aria", width / 2, height * 0.2)  # a box at the very top of the canvas
    drop_character(page, "Kael", width * 0.25, height / 2)
    canvas = page.canvas
    visible = canvas.viewport().rect()
    for item in canvas.placement_items:
        label = item.label
        assert label.isVisible() and label.text().startswith(item.placement.character)
        on_screen = label.deviceTransform(canvas.viewportTransform()).mapRect(label.boundingRect())
        in_scene = canvas.mapToScene(on_screen.toRect()).boundingRect()
        assert in_scene.width() > 10 and in_scene.height() > 5
        assert visible.contains(on_screen.toRect())
        for joint in head:
            point = item.person.body[joint]
            if point.present:
                assert not in_scene.contains(QPointF(point.x, point.y)), BODY_KEYPOINTS[joint]
                assert not on_screen.contains(canvas.mapFromScene(QPointF(point.x, point.y)).toPointF())
        x, y, _, h = item.placement.box
        top_left, bottom = canvas.mapFromScene(QPointF(x, y)), canvas.mapFromScene(QPointF(x, y + h)).y()
        assert on_screen.left() >= top_left.x() - 1
        above = on_screen.bottom() <= top_left.y() + 1
        assert above or on_screen.top() >= bottom - 1
        if item.placement.character == "Kael" or size == (768, 512):
            assert above  # room above it on the view
        else:
            assert not above  # Aria's box touches the top of a scene zoomed out past the label
