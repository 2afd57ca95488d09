"""Character sheets: turnarounds and expression grids.

request.py  SheetRequest: what a sheet job asks for (plain data, no torch)
render.py   planning the panels and rendering them (the CLI's and the demo's make_sheet)
layout.py   laying out the labelled grid, PNG and PDF export (light: Pillow only)
found.py    a character's sheets found again from their panels' metadata (sheets made outside the queue)
jobs.py     the "sheet" job kind run by the worker
"""
