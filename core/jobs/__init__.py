"""The job queue and the worker: all GPU work (generations, trainings) as rows in SQLite.

queue.py (light: the GUI and the CLI enqueue and read), windows.py (schedule windows),
worker.py (the process that owns the GPU), handlers.py (job kinds), context.py (what a
handler sees), worker_lock.py (which workers are alive).
"""
