"""Scenes: characters placed on a canvas with boxes, poses and prompts, compiled and rendered.

model.py       Scene and Placement: plain data, the scene JSON file format
edits.py       what each composer edit does, as functions from one Scene to the next (no Qt)
characters.py  what a scene needs from the library about its characters (trigger words)
choices.py     the checkpoints and LoRAs the composer offers, by name
compile.py     a scene -> control image, masks and regional prompts
render.py      SceneRenderer: a compiled scene through the GenerationService
saved.py       scenes saved in the library (their backgrounds copied in)
jobs.py        the "scene" job kind run by the worker
"""
