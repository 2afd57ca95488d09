"""Build and maintenance tools: run from the repository root (`python -m tools.NAME`, `bash tools/NAME.sh`)."""
