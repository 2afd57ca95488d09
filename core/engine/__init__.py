"""The torch side: diffusers pipelines kept warm, and one render. Only the worker imports it.

pipeline_cache.py        warm pipelines within the memory budget; LoRA, IP-Adapter, ControlNet attached
runner.py                one render: modes, identities, controls, regions, detail passes
photomaker.py            PhotoMaker v1/v2: the ID encoder, the class-token prompt fusion and the merge step
t2i_adapters.py          T2I-Adapters loaded, their features fed to the UNet of the ordinary pipeline
regions.py               regional prompts (attention masks per character)
image_embeddings.py      reference images -> IP-Adapter / FaceID / InstantID embeddings
single_file_loading.py   single-file checkpoints and ControlNets with the shipped configs, offline
samplers.py, devices.py, preview.py
"""
