"""`gateway ingest` runs against real gateways with retrieval: the retrieval tests' own."""

from tests.rag.conftest import rag_factory, rag_gateway

__all__ = ["rag_factory", "rag_gateway"]
