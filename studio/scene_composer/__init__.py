"""The scene composer page: characters placed on a canvas, posed, and rendered through the queue.

page.py ScenePage (the page), document.py + commands.py (the scene being edited and its undo
stack), edits.py (what each edit does to a core Scene), canvas.py + placement_item.py +
skeleton_item.py (the QGraphicsView), pose_panel.py (the pose library), properties.py (the
right-hand panel), results_strip.py (renders as they finish), image_loader.py (off-thread decoding).
"""
