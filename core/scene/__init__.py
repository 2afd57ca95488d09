"""Scenes: characters placed on a canvas with boxes, poses and prompts, compiled and rendered."""
