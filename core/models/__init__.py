"""The weights a user has on disk: what they are, and the registry that names them.

kinds.py          the taxonomy: kinds, families, control types and their names (one identifier each)
weights_files.py  reading .safetensors headers, pickles (when allowed) and configs, without loading
onnx_files.py     ONNX pose estimators and face models told apart by their inputs and outputs
layouts.py        single-file key layouts and the shipped configs they fit
photomaker_layouts.py   PhotoMaker files (id_encoder + lora_weights, v1 or v2) read from their headers
t2i_adapter_layouts.py  T2I-Adapter key layouts (diffusers, TencentARC's), renamed and configured from shapes
controlnet_union_layouts.py  ControlNet Union / ProMax (xinsir): union keys, control modes, config from shapes
inspection.py     what a file or folder is: kind, family, format and details, from its contents
hashing.py        the sha256 a model is known by
catalog.py        the registered models, read (light: the GUI and queue checks use it)
registry.py       registering and removing models
"""
