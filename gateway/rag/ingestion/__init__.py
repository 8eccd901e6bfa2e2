"""Documents in: uploads spooled to disk, files' bytes in Postgres, and the ingestion jobs
that turn a file into embedded chunks of a vector store.

    uploads.py       a multipart upload received as the client sends it
    spool.py         anonymous temporary files on local disk
    file_store.py    files' bytes in Postgres, written and read a part at a time
    jobs.py          the job queue in Postgres: claim, lease, stage, complete
    worker.py        IngestWorker, a task in each gateway process that runs jobs
    ingest.py        one job: who pays, what ends it `failed`, what is retried
    ingest_run.py    one run: text → chunks → embedded batches → staged rows
    text_source.py   a spooled file's text, block by block
    parsing.py       text, Markdown, code, HTML, JSON and PDF into text (pure)
    sandbox.py       untrusted formats parsed in a child process within limits
    parse_child.py   that child (`python -m gateway.rag.ingestion.parse_child`)
    chunking.py      chunking strategies as OpenAI defines them (pure)
    splitting.py     text into token-sized chunks as it arrives (pure)

Used by the routes (uploads, spool, file store, chunking strategies) and by the app's
lifespan (`worker.start_worker`). Nothing is imported here: the parsing child starts
from this package, and should load no more than it needs.
"""
