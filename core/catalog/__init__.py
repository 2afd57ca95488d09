"""The library's projects, characters and references, as the CLI and the GUI use them.

service.py       Catalog: every method one transaction, returning plain records
records.py       the JSON-ready records (their keys are a contract for `--json` output)
image_import.py  a user's image file, read safely into a normalised PNG or refused with why
"""
