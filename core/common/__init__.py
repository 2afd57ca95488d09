"""Small helpers every feature package uses; no torch, no Qt.

typed_json.py     reading hostile JSON into typed, bounded fields (refusals name the field)
log_file.py       warnings and tracebacks into <library>/logs/character-studio.log
offline.py        the environment that keeps Hugging Face libraries off the network
quiet.py          silencing the libraries' noise while loading models
memory_budget.py  how much accelerator memory the worker may keep models in
describe.py       durations, progress and windows as people read them
"""
