"""Files, vector stores, ingestion jobs and hybrid search over the user's own Postgres."""
