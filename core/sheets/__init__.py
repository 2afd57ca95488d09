"""Character sheets: turnarounds and expression grids.

request.py  SheetRequest: what a sheet job asks for (plain data, no torch)
render.py   planning the panels, rendering them, laying out the grid, PNG and PDF export
jobs.py     the "sheet" job kind run by the worker
"""
