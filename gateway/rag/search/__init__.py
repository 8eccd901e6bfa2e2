"""Hybrid search over vector stores: a vector and a full-text ranking, fused by rank.

    hybrid.py    `search_stores` (embed the query, check the stores, search),
                 `search_vectors` (with a ready vector) and `SearchHit`
    ranking.py   the two rankings, a SQL statement each, run at once on search's own
                 pool of connections (gateway.db.read_pool)
    fusion.py    reciprocal rank fusion, and the words of the text query (pure)
    scope.py     the stores a search reads: there for the caller, marked active
    filters.py   OpenAI attribute filters as a SQL condition (pure)

Used by the routes (a vector store's search) and by grounding (file_search). What search
shares with ingestion is at gateway.rag's level: the vectors and their HNSW indexes
(index.py) and the words too common to rank by (common_terms.py).
"""
