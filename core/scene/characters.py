"""What a scene needs to know about its characters from the library."""

from __future__ import annotations

from core.scene.model import Scene
from storage import characters as character_store
from storage.library import Library


def trigger_words(library: Library, scene: Scene) -> dict[str, str]:
    words = {}
    with library.db.reading() as session:
        for placement in scene.placements:
            character = character_store.find_character(session, placement.character, placement.project)
            if character.trigger_word:
                words[placement.character] = character.trigger_word
    return words


def characters_with_references(library: Library, scene: Scene) -> set[str]:
    names = set()
    with library.db.reading() as session:
        for placement in scene.placements:
            character = character_store.find_character(session, placement.character, placement.project)
            if character_store.live_references(session, character):
                names.add(placement.character)
    return names
