"""Answers grounded in the user's documents: the `file_search` tool of chat completions
and of `/v1/responses`, which the gateway consumes (search, fit, forward, cite).

    chat.py                take the tool, search, fit the prompt, forward without it
    context.py             fitting the prompt into the model's window (pure)
    tokens.py              counting a chat prompt with the engine's own tokenizer
    citations.py           `file_citation` annotations on answers, whole or streamed
    responses_request.py   a Responses request as the chat completion that answers it (pure)
    responses_output.py    that chat completion written back as a Response

Used by the proxy's chat and Responses routes (gateway.api.openai_proxy): `chat.take_file_search`
and `chat.augment`, `citations.CitationRewriter`, `responses_request.chat_request`,
`responses_output.ResponsesRewriter`.
"""
