"""`gateway eval`: the quality and speed of served models on the user's own cases.

cases (the JSONL case format) → checks (pure checkers) → runner (through the gateway's
OpenAI API) → scoring (rates per metric) → report/render (the side-by-side table);
template_check reads the answers for a missing or wrong chat template; speed measures TTFT
and tokens/s; store and routes keep results in Postgres (`/admin/evals`); cli is the
command. It is a client of the gateway: nothing here imports the server's modules but
store/routes, which the server wires.
"""
