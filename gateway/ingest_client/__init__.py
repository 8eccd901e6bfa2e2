"""`gateway ingest`: a client of a running gateway, not part of the server. It puts a
folder of documents into a vector store through the Files and Vector Stores API, with an
API key, as any client would.

    cli.py      the click command, registered by gateway.cli
    client.py   a small HTTP client for the Files and Vector Stores API (aiohttp)
    sync.py     which local files are new, changed or unchanged (pure)

It imports nothing of the server (no gateway.rag, no database, no FastAPI), so it runs
wherever the package is installed, against a gateway anywhere.
"""
