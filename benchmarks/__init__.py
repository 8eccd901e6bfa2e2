"""Benchmarks for the gateway: a fast fake engine, a load generator, and the runner."""
