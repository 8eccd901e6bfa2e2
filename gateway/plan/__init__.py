"""The VRAM planner and the model catalog.

`gateway plan` answers whether a model fits a GPU under vLLM (planner.py is the pure
arithmetic); `gateway models pull|list` fetches the checkpoints of models/catalog.yaml.
The click commands live in gateway.plan.cli.
"""
