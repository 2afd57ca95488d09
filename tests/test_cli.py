"""The CLI contract, through a real subprocess: commands, --json documents, exit codes, messages."""

from __future__ import annotations

from tests import image_corpus


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_library_round_trip_in_json(cli, tmp_path):
    assert cli("project", "create", "Fight Night").code == 0
    created = cli("--json", "character", "create", "Aria", "--project", "Fight Night", "--trigger", "ariaknight", "--notes", "red hair")
    assert created.code == 0
    assert created.json()["name"] == "Aria" and created.json()["trigger_word"] == "ariaknight"

    images = [image_corpus.save(image_corpus.gradient(seed=i), tmp_path / f"aria{i}.png") for i in range(2)]
    added = cli(
        "character", "add-refs", "Aria", *map(str, images), "--view", "front", "--expression", "angry", "--outfit", "armour", "--json"
    )
    assert added.code == 0, added.stderr
    imported = added.json()["imported"]
    assert [r["outcome"] for r in imported] == ["added", "added"]

    shown = cli("character", "show", "Aria", "--project", "Fight Night", "--json").json()
    assert shown["reference_count"] == 2
    ref = shown["references"][0]
    assert {"id", "file", "path", "sha256", "width", "height", "view", "expression", "outfit", "crop_box"} <= ref.keys()
    assert (ref["view"], ref["expression"], ref["outfit"]) == ("front", "angry", "armour")
    assert not ref["file"].startswith("/")  # relative: the library folder can move
    assert (cli.library_dir / ref["file"]).exists()

    listed = cli("character", "list", "--json").json()
    assert [(c["name"], c["project"], c["reference_count"]) for c in listed] == [("Aria", "Fight Night", 2)]
    projects = cli("project", "list", "--json").json()
    assert projects[0]["name"] == "Fight Night" and projects[0]["characters"] == 1


def test_human_output_reads_well(cli, tmp_path):
    cli("project", "create", "P")
    cli("character", "create", "Kael", "--project", "P", "--trigger", "kaelrogue")
    text = cli("character", "list").stdout
    assert text.splitlines()[0].split() == ["CHARACTER", "PROJECT", "TRIGGER", "REFERENCES"]
    assert text.splitlines()[1].split() == ["Kael", "P", "kaelrogue", "0"]


def test_delete_restore_trash_and_purge(cli, tmp_path):
    cli("project", "create", "P")
    cli("character", "create", "Aria", "--project", "P")
    image = image_corpus.save(image_corpus.gradient(), tmp_path / "a.png")
    cli("character", "add-refs", "Aria", str(image))
    assert cli("character", "delete", "Aria").code == 0
    assert cli("character", "list", "--json").json() == []
    trash = cli("trash", "list", "--json").json()
    assert [(t["kind"], t["name"], t["project"]) for t in trash] == [("character", "Aria", "P")]
    assert cli("character", "restore", "Aria").code == 0
    assert cli("character", "show", "Aria", "--json").json()["reference_count"] == 1
    cli("character", "delete", "Aria")
    purged = cli("trash", "purge", "--json").json()
    assert purged["characters"] == 1 and purged["files_removed"] == 1
    assert list((cli.library_dir / "files").rglob("*.png")) == []
    assert cli("project", "delete", "P").code == 0
    assert cli("project", "list", "--json").json() == []


def test_bad_image_refused_with_one_line_and_nothing_changed(cli, tmp_path):
    cli("project", "create", "P")
    cli("character", "create", "Aria", "--project", "P")
    bad = image_corpus.bad_files(tmp_path / "bad")
    for path in bad.values():
        result = cli("character", "add-refs", "Aria", str(path))
        assert_one_line_error(result, 1, str(path))
    assert cli("character", "show", "Aria", "--json").json()["reference_count"] == 0
    assert not (cli.library_dir / "files").exists() or list((cli.library_dir / "files").rglob("*.png")) == []


def test_skip_bad_imports_good_and_lists_bad(cli, tmp_path):
    cli("project", "create", "P")
    cli("character", "create", "Aria", "--project", "P")
    good = image_corpus.save(image_corpus.gradient(), tmp_path / "good.png")
    bad = image_corpus.bad_files(tmp_path / "bad")["truncated"]
    all_or_nothing = cli("character", "add-refs", "Aria", str(good), str(bad))
    assert all_or_nothing.code == 1
    assert all_or_nothing.stderr.splitlines()[0].startswith(f"refused {bad}: truncated image")
    assert "--skip-bad" in all_or_nothing.stderr
    skipped = cli("character", "add-refs", "Aria", str(good), str(bad), "--skip-bad")
    assert skipped.code == 0
    assert f"skipped {bad}: truncated image" in skipped.stderr
    as_json = cli("character", "add-refs", "Aria", str(bad), "--skip-bad", "--json").json()
    assert as_json["refused"] == [{"path": str(bad), "reason": "truncated image: the file ends before its image data does"}]
    assert cli("character", "show", "Aria", "--json").json()["reference_count"] == 1


def test_exit_codes_and_messages(cli):
    assert_one_line_error(cli("character", "create", "Aria"), 2, "--project")
    assert_one_line_error(cli("frobnicate"), 2, "invalid choice")
    assert_one_line_error(cli("character", "show", "Nobody"), 1, "no character named 'Nobody'", "character list")
    cli("project", "create", "P")
    assert_one_line_error(cli("project", "create", "P"), 1, "already exists")
    assert_one_line_error(cli("character", "create", "Aria", "--project", "Nope"), 1, "no project named 'Nope'")
    assert_one_line_error(cli("character", "add-refs", "Nobody", "x.png"), 1, "no character named 'Nobody'")


def test_every_command_has_help(cli):
    for command in (
        [],
        ["project"],
        ["project", "create"],
        ["project", "list"],
        ["project", "delete"],
        ["character"],
        ["character", "create"],
        ["character", "list"],
        ["character", "show"],
        ["character", "delete"],
        ["character", "restore"],
        ["character", "add-refs"],
        ["trash", "list"],
        ["trash", "purge"],
        ["demo"],
    ):
        result = cli(*command, "--help", library=None)
        assert result.code == 0 and "usage:" in result.stdout, command


def test_library_location_from_env_and_flag_after_command(cli, tmp_path):
    env_library = tmp_path / "from-env"
    assert cli("project", "create", "EnvProject", library=None, env={"CHARACTER_STUDIO_LIBRARY": str(env_library)}).code == 0
    assert (env_library / "library.sqlite3").exists()
    listed = cli("project", "list", "--json", "--library", str(env_library), library=None)
    assert [p["name"] for p in listed.json()] == ["EnvProject"]
    info = cli("library", "info", "--json", library=None, env={"CHARACTER_STUDIO_LIBRARY": str(env_library)}).json()
    assert info["library"] == str(env_library) and info["projects"] == 1


def test_demo_builds_library_and_verifies_files(cli):
    first = cli("demo", "--no-render", "--json")  # rendering is covered in test_generate_cli
    assert first.code == 0, first.stderr
    data = first.json()
    assert data["created"] is True and data["files_verified"] == 8
    assert [c["name"] for c in data["characters"]] == ["Aria", "Kael"]
    assert [r["view"] for r in data["characters"][0]["references"]] == ["front", "three-quarter", "side", "back"]
    again = cli("demo", "--no-render", "--json").json()  # idempotent: finds, does not duplicate
    assert again["created"] is False and again["files_verified"] == 8
    # Its hint opens the library it built, not the (empty) default one.
    text = cli("demo", "--no-render").stdout
    assert f"character-studio --library {cli.library_dir} generation list" in text
