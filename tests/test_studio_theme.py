"""The studio's look: dark unless the user picks light in Settings, which applies at once and is
remembered; icons on the pages' actions; the panels' splitters come back as the user left them."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QSplitter

from studio import theme
from studio.context import StudioContext
from studio.main_window import StudioWindow, named_splitters
from studio.settings_panel import SettingsPanel

WAIT_MS = 30_000


def ini_settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def page_splitters(page) -> dict[str, QSplitter]:
    """The splitters the window remembers by name, and the one a page remembers itself."""
    own = getattr(page, "splitter", None)
    return {**named_splitters(page), **({"page's own": own} if isinstance(own, QSplitter) else {})}


def window_lightness() -> int:
    return QApplication.palette().color(QPalette.ColorRole.Window).lightness()


@pytest.fixture(autouse=True)
def back_to_default(qapp):
    yield
    theme.apply_theme(qapp, theme.DEFAULT_THEME)  # other test files see the app as the studio starts it


def test_the_theme_is_dark_unless_light_was_chosen(qapp, tmp_path):
    settings = ini_settings(tmp_path)
    assert theme.theme_setting(settings) == "dark"
    theme.apply_theme(qapp, theme.theme_setting(settings))
    palette = QApplication.palette()
    assert window_lightness() < 60
    # Text, selection and disabled text are told apart from what is behind them.
    assert palette.color(QPalette.ColorRole.Text).lightness() > 200
    assert palette.color(QPalette.ColorRole.Highlight) != palette.color(QPalette.ColorRole.Base)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    assert disabled != palette.color(QPalette.ColorRole.Text)
    settings.setValue(theme.THEME_KEY, "nonsense")
    assert theme.theme_setting(settings) == "dark"


def test_choosing_light_in_settings_applies_at_once_and_is_remembered(qtbot, qapp, library, tmp_path):
    theme.apply_theme(qapp, "dark")
    context = StudioContext.open(library, ini_settings(tmp_path))
    panel = SettingsPanel(context)
    qtbot.addWidget(panel)
    assert panel.theme_box.currentData() == "dark"

    panel.theme_box.setCurrentIndex(panel.theme_box.findData("light"))
    assert theme.current_theme() == "light"
    assert window_lightness() > 200
    assert ini_settings(tmp_path).value(theme.THEME_KEY) == "light"

    again = SettingsPanel(StudioContext.open(library, ini_settings(tmp_path)))
    qtbot.addWidget(again)
    assert again.theme_box.currentData() == "light"
    again.theme_box.setCurrentIndex(again.theme_box.findData("dark"))
    assert window_lightness() < 60


def test_an_error_line_reads_in_either_theme(qtbot, qapp):
    from PySide6.QtWidgets import QLabel

    label = QLabel("Could not read the library")
    qtbot.addWidget(label)
    theme.mark_error(label)
    for name in ("dark", "light"):
        theme.apply_theme(qapp, name)
        label.ensurePolished()
        shown = label.palette().color(QPalette.ColorRole.WindowText)
        assert shown == theme.error_colour() == theme.COLOURS[name].error


def test_toolbar_actions_have_icons_and_splitters_come_back_in_a_new_window(qtbot, qapp, library, tmp_path):
    theme.apply_theme(qapp, "dark")
    context = StudioContext.open(library, ini_settings(tmp_path))
    window = StudioWindow(context)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    library_page = window.page("library")
    assert not library_page.undo_action.icon().isNull()
    assert not window.page("queue").cancel_action.icon().isNull()
    for index in range(window.tabs.count()):
        assert not window.tabs.tabIcon(index).isNull()

    def tab_glyph_lightness() -> int:
        image = window.tabs.tabIcon(0).pixmap(24, 24).toImage()
        return max(image.pixelColor(x, y).lightness() for x in range(24) for y in range(24) if image.pixelColor(x, y).alpha() > 200)

    assert tab_glyph_lightness() > 180  # light glyphs on dark
    theme.apply_theme(qapp, "light")
    assert tab_glyph_lightness() < 90  # redrawn dark on light
    theme.apply_theme(qapp, "dark")

    sizes: dict[tuple[str, str], list[int]] = {}
    for key in ("library", "scene", "gallery", "queue", "sheets"):
        for name, splitter in page_splitters(window.page(key)).items():
            wanted = [120 + 40 * i for i in range(splitter.count())]
            splitter.setSizes(wanted)
            sizes[(key, name)] = splitter.sizes()
    qtbot.waitUntil(lambda: not library_page.busy(), timeout=WAIT_MS)
    window.close()

    again = StudioWindow(StudioContext.open(library, ini_settings(tmp_path)))
    qtbot.addWidget(again)
    for (key, name), wanted in sizes.items():
        splitter = page_splitters(again.page(key))[name]
        restored = splitter.sizes()  # a pixel may go to rounding when the window lays the page out again
        assert len(restored) == len(wanted) and all(abs(a - b) <= 2 for a, b in zip(restored, wanted, strict=True)), f"{key}/{name}"
    qtbot.waitUntil(lambda: not again.page("library").busy(), timeout=WAIT_MS)
    again.close()
