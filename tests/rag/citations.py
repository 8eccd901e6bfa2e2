"""Reading file citations out of the openai SDK's Responses objects, typed."""

from __future__ import annotations

from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from openai.types.responses.response_output_text import AnnotationFileCitation


def file_citations(item: object) -> list[AnnotationFileCitation]:
    """The annotations of an output message's text, each of which must be a file citation."""
    assert isinstance(item, ResponseOutputMessage), item
    text = item.content[0]
    assert isinstance(text, ResponseOutputText), text
    cited = [a for a in text.annotations if isinstance(a, AnnotationFileCitation)]
    assert len(cited) == len(text.annotations), text.annotations
    return cited
