"""Domain logic and ML: pure Python with torch/diffusers. Never imports Qt."""

__version__ = "0.1.0"
