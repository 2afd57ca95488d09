"""`character-studio demo`: a library and tiny models that prove an installation end to end.

library.py      the demo project, its two characters and their drawn references
tiny_models.py  tiny seeded models written in the real on-disk formats (also used by tests, bench)
render.py       the toy-world models (resources/toy-world) copied, registered and rendered through the
                normal generation path
toy_world.py    the toy world (flat-colour figures from skeletons) tools/build_toy_world.py trains
                on, and the measures (figure masks, colour votes) the behavioural tests use
"""
