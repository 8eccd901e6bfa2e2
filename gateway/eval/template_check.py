"""Is the chat template right? A model served without one (or with another model's)
answers by echoing role markers, or by carrying on with the user's own text, and looks
like a weak model when it is a misconfigured one. Pure: reads answers, says what it saw."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Role and turn markers of the common template families, as they leak into answers.
_MARKERS = re.compile(
    r"<\|im_start\|>|<\|im_end\|>|\[INST\]|\[/INST\]|<\|start_header_id\|>|<\|eot_id\|>"
    r"|<\|user\|>|<\|assistant\|>|<\|system\|>|<start_of_turn>|<end_of_turn>"
    r"|^\s*#{2,3} ?(?:User|Assistant|Human|Instruction|Response):"
    r"|^\s*(?:User|Human|Assistant):\s",
    re.MULTILINE,
)
TEMPLATE_KINDS = ("role_markers", "continues_prompt")  # the findings about the template
_ECHO_CHARS = 30  # a verbatim run this long from the user's message is echo, not answer
FIX = (
    "Start vLLM with the model's own template: `--chat-template /path/to/template.jinja` "
    "(a GGUF file: also `--tokenizer <the original Hugging Face repo>`, so vLLM reads the "
    "template and tokenizer from there)."
)


@dataclass(frozen=True)
class Sample:
    """An answer and the user message it answers; `probe` marks cases written to test this."""

    case_id: str
    user: str
    answer: str
    probe: bool = False


@dataclass(frozen=True)
class Finding:
    kind: str  # "role_markers" or "continues_prompt"
    cases: list[str]
    example: str
    message: str


def markers_in(text: str) -> list[str]:
    return sorted({m.group(0).strip() for m in _MARKERS.finditer(text)})


def continues(user: str, answer: str) -> bool:
    """The answer repeats a long run of the user's words, as a text completion carrying on
    from the prompt does."""
    user, answer = user.strip(), answer.strip()
    if not user or not answer:
        return False
    for start in range(0, max(1, len(user) - _ECHO_CHARS + 1), 5):
        piece = user[start : start + _ECHO_CHARS]
        if len(piece) == _ECHO_CHARS and piece in answer:
            return True
    return False


def findings(samples: Iterable[Sample]) -> list[Finding]:
    marked: list[tuple[str, list[str]]] = []
    echoing: list[str] = []
    for s in samples:
        found = markers_in(s.answer)
        if found:
            marked.append((s.case_id, found))
        if s.probe and continues(s.user, s.answer):
            echoing.append(s.case_id)
    result: list[Finding] = []
    if marked:
        seen = sorted({m for _, ms in marked for m in ms})
        result.append(
            Finding(
                "role_markers",
                [c for c, _ in marked],
                ", ".join(seen),
                f"The model wrote chat role markers ({', '.join(seen)}) into "
                f"{len(marked)} answer(s): it is probably served without its chat template, "
                f"or with another model's. {FIX}",
            )
        )
    if echoing:
        result.append(
            Finding(
                "continues_prompt",
                echoing,
                echoing[0],
                f"The model repeated or continued the user's text instead of answering in "
                f"{len(echoing)} probe(s): the sign of a missing or wrong chat template. {FIX}",
            )
        )
    return result
