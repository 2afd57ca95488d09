"""The prompt matrix (A1111's X/Y plot as a job): one request, one or two axes of changes, every
cell rendered with the same seed, laid out as a labelled grid; each cell is also a generation.

request.py  MatrixRequest and its axes: plain data, the `--x`/`--y` text syntax, JSON (no torch)
plan.py     the cells: the base request with each axis value applied
render.py   the labelled grid image, and a matrix made at once (the CLI without --queue)
enqueue.py  a matrix checked and queued (light: the GUI and the CLI queue through it)
jobs.py     the "matrix" job kind run by the worker
"""
