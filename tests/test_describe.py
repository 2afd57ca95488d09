"""Durations, progress and windows read the same in `jobs list`, the Queue page and training
messages; paths the library records are relative to it so the library can move."""

from __future__ import annotations

from core.common import describe
from storage.library import open_library


def test_durations_progress_and_windows_read_one_way():
    assert [describe.duration(s) for s in (0, 45.4, 65, 3599, 3600 + 5 * 60 + 59)] == ["0s", "45s", "1m05s", "59m59s", "1h05m"]
    assert describe.duration(None) == "" and describe.duration(None, missing="-") == "-"
    assert describe.duration(-3) == "0s"  # a clock step backwards is not a negative ETA
    assert (describe.progress(12, 40), describe.progress(7, None), describe.progress(0, None, missing="-")) == ("12/40", "7", "-")
    assert describe.window("22:00", "07:00") == "22:00–07:00"
    assert (describe.window("22:00", None), describe.window(None, "07:30"), describe.window(None, None)) == (
        "from 22:00",
        "until 07:30",
        "",
    )


def test_the_library_records_its_own_files_relative_and_others_absolute(tmp_path):
    with open_library(tmp_path / "lib") as library:
        inside = library.root / "jobs" / "3" / "sheet.png"
        assert library.relative(inside) == "jobs/3/sheet.png"
        assert library.relative(library.root / "jobs" / ".." / "x.png") == "x.png"
        outside = tmp_path / "elsewhere.png"
        assert library.relative(outside) == str(outside.resolve())
