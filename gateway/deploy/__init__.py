"""The docker compose deployment's helpers (`gateway init`). Standard library only."""
