"""Generating images of characters: from a request to PNGs and their rows.

request.py          GenerationRequest: plain data, JSON, bounds (no torch)
request_options.py  the CLI/GUI options that build a request
request_models.py   which registered models a request uses and whether they fit its base
identities.py       resolving names: characters to rows, identity entries to adapters, references, faces
inputs.py           the image files a request reads, normalised and kept with the generation
service.py          GenerationService: prepare (names -> plan), render, score, PNG + rows in one step
png_metadata.py     the request and models carried inside each PNG
queries.py          reading generations back (light: GUI and `generation list`)
enqueue.py          a "generate" job checked and queued (light: the GUI queues through it)
jobs.py             the "generate" job kind as the worker runs it
"""
