"""Retrieval over the user's own documents in Postgres: the Files and Vector Stores API,
ingestion, hybrid search, and chat and Responses grounded in it (`file_search`).

    routes/      the Files and Vector Stores API, and the storage of its objects
    ingestion/   documents in: uploads, files' bytes, jobs and the worker, parsing, chunking
    search/      hybrid search: a vector and a full-text ranking fused by rank, filters
    grounding/   the file_search tool of chat and Responses: fitting, citations

What every concern shares lives at this level, and imports none of them:

    access.py        who is asking, and which files and stores they reach
    resources.py     Retrieval: what retrieval works with, built in the app's lifespan
    upload_slots.py  how many uploads may be in progress (held by Retrieval)
    common_terms.py  words too common for the text ranking (a cache held by Retrieval)
    embeddings.py    embedding and token counting through the engines
    metering.py      every embedding admitted and metered for the key that caused it
    index.py         the chunks' vectors: their literal, one HNSW index per dimension

Dependencies run one way: routes → ingestion, search, grounding → this level; grounding
uses search. Nothing here imports gateway.api, gateway.state, gateway.wiring or
gateway.app. The `gateway ingest` client, which uploads through the API, is apart
(gateway.ingest_client).
"""
