"""The studio's look: a dark Fusion palette by default (images read best on neutral dark grey, as in
Krita or Photoshop), a light one on request, one accent colour, and a small stylesheet.

The choice lives in QSettings ("appearance/theme"); `apply_theme` sets it on the application and
can be called again at any time (the Settings page does, and everything repaints in the new one).
Colours that mean something (an error) come from here, so they stay readable in either theme.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from resources import RESOURCES_DIR

THEME_KEY = "appearance/theme"
THEMES = {"dark": "Dark", "light": "Light"}
DEFAULT_THEME = "dark"
THEME_PROPERTY = "studio_theme"  # on the QApplication: the theme it shows now
TONE_PROPERTY = "tone"  # on a label: "error" shows its text in the theme's error colour


@dataclass(frozen=True)
class Colours:
    window: str  # panels, toolbars
    base: str  # lists, fields, image wells
    alternate: str
    button: str
    text: str
    dim_text: str  # secondary text, unselected tabs
    disabled_text: str
    light: str
    mid: str  # hint text (palette(mid)) and chart grids
    line: str  # separators and hovered borders
    dark: str
    accent: str  # selection and the current tab; white text on it reads at >= 4.5:1
    focus: str  # the focus ring and hovered handles: the accent, brighter
    hover: str  # a tool button under the mouse
    error: str  # >= 4.5:1 on window and base


DARK = Colours(
    window="#262626",
    base="#1c1c1c",
    alternate="#222222",
    button="#333333",
    text="#e0e0e0",
    dim_text="#a0a0a0",
    disabled_text="#6a6a6a",
    light="#4a4a4a",
    mid="#808080",
    line="#3a3a3a",
    dark="#141414",
    accent="#2f6db5",
    focus="#4a9eff",
    hover="#3a3a3a",
    error="#ff6b6b",
)
LIGHT = Colours(
    window="#efefef",
    base="#ffffff",
    alternate="#f5f5f5",
    button="#e4e4e4",
    text="#1a1a1a",
    dim_text="#555555",
    disabled_text="#9a9a9a",
    light="#ffffff",
    mid="#8c8c8c",
    line="#c4c4c4",
    dark="#8a8a8a",
    accent="#2f6db5",
    focus="#2f6db5",
    hover="#dcdcdc",
    error="#c0392b",
)
COLOURS = {"dark": DARK, "light": LIGHT}


def theme_setting(settings: QSettings) -> str:
    """The theme chosen in the settings (the default where none or an unknown one is)."""
    value = settings.value(THEME_KEY, DEFAULT_THEME)
    return value if isinstance(value, str) and value in THEMES else DEFAULT_THEME


def current_theme() -> str:
    app = QApplication.instance()
    value = app.property(THEME_PROPERTY) if app is not None else None
    return value if isinstance(value, str) and value in THEMES else DEFAULT_THEME


def colours() -> Colours:
    """The colours of the theme shown now."""
    return COLOURS[current_theme()]


def error_colour() -> QColor:
    return QColor(colours().error)


def mark_error(widget: QWidget, bold: bool = False) -> None:
    """Shows `widget`'s text in the error colour of whichever theme is shown, now and after a switch."""
    widget.setProperty(TONE_PROPERTY, "error")
    widget.style().unpolish(widget)  # a property the stylesheet reads takes effect on the next polish
    widget.style().polish(widget)
    if bold:
        font = widget.font()
        font.setBold(True)
        widget.setFont(font)


def palette(c: Colours) -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    for r, colour in (
        (role.Window, c.window),
        (role.WindowText, c.text),
        (role.Base, c.base),
        (role.AlternateBase, c.alternate),
        (role.ToolTipBase, c.button),
        (role.ToolTipText, c.text),
        (role.PlaceholderText, c.dim_text),
        (role.Text, c.text),
        (role.Button, c.button),
        (role.ButtonText, c.text),
        (role.BrightText, c.error),
        (role.Light, c.light),
        (role.Midlight, c.line),
        (role.Mid, c.mid),
        (role.Dark, c.dark),
        (role.Shadow, "#000000"),
        (role.Highlight, c.accent),
        (role.HighlightedText, "#ffffff"),
        (role.Link, c.focus),
        (role.LinkVisited, c.focus),
    ):
        p.setColor(r, QColor(colour))
    for r in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText, role.PlaceholderText):
        p.setColor(group.Disabled, r, QColor(c.disabled_text))
    p.setColor(group.Disabled, role.Button, QColor(c.window))
    p.setColor(group.Disabled, role.Base, QColor(c.window))
    p.setColor(group.Disabled, role.Highlight, QColor(c.line))
    # An unfocused list still shows what is selected, a little quieter.
    p.setColor(group.Inactive, role.Highlight, QColor(c.accent).darker(125 if c is DARK else 100))
    return p


# The ticked box's mark: a stylesheet that styles the indicator draws no mark of its own.
CHECK_MARK = (RESOURCES_DIR / "icons" / "check.svg").as_posix()


def stylesheet(c: Colours) -> str:
    return f"""
QToolBar {{ border: none; spacing: 2px; padding: 2px 4px; background: {c.window}; }}
QToolBar::separator {{ background: {c.line}; width: 1px; margin: 4px 6px; }}
QToolButton {{ border: 1px solid transparent; border-radius: 4px; padding: 3px 6px; color: {c.text}; }}
QToolButton:hover {{ background: {c.hover}; border-color: {c.line}; }}
QToolButton:pressed, QToolButton:checked {{ background: {c.accent}; color: #ffffff; }}
QToolButton:focus {{ border-color: {c.focus}; }}
QToolButton:disabled {{ color: {c.disabled_text}; }}
QSplitter::handle {{ background: {c.window}; }}
QSplitter::handle:horizontal {{ width: 5px; }}
QSplitter::handle:vertical {{ height: 5px; }}
QSplitter::handle:hover {{ background: {c.focus}; }}
QTabBar::tab {{ padding: 6px 14px; border: none; border-bottom: 2px solid transparent; background: transparent; color: {c.dim_text}; }}
QTabBar::tab:hover {{ color: {c.text}; background: {c.hover}; }}
QTabBar::tab:selected {{ color: {c.text}; border-bottom: 2px solid {c.focus}; }}
QTabBar::tab:disabled {{ color: {c.disabled_text}; }}
QGroupBox {{ font-weight: bold; }}
QToolTip {{ color: {c.text}; background: {c.button}; border: 1px solid {c.line}; }}
QLabel[{TONE_PROPERTY}="error"] {{ color: {c.error}; }}
QCheckBox::indicator {{ width: 13px; height: 13px; border: 1px solid {c.mid}; border-radius: 3px; background: {c.base}; }}
QCheckBox::indicator:hover {{ border-color: {c.focus}; }}
QCheckBox::indicator:checked {{ background: {c.accent}; border-color: {c.focus}; image: url({CHECK_MARK}); }}
QCheckBox::indicator:disabled {{ border-color: {c.line}; background: {c.window}; }}
"""


def apply_theme(app: QApplication, name: str) -> None:
    """Shows the whole application in theme `name` ("dark" or "light"); an unknown name is the default."""
    name = name if name in THEMES else DEFAULT_THEME
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # the one style that follows a palette on every platform
    c = COLOURS[name]
    app.setProperty(THEME_PROPERTY, name)
    app.setPalette(palette(c))
    app.setStyleSheet(stylesheet(c))
