"""The reservation and the one cost per request (pure)."""

from __future__ import annotations

import pytest

from gateway.admission.cost import Cost, completion_reservation, prompt_estimate, request_cost


def test_prompt_estimate_counts_bytes_outside_ascii_more() -> None:
    assert prompt_estimate(b"x" * 400) == 100
    cjk = "\u4f60\u597d" * 100  # 200 characters, 600 UTF-8 bytes
    assert prompt_estimate(cjk.encode()) == 300  # not 150: 1.5 tokens per character
    mixed = ("a" * 40 + "\u00e9" * 10).encode()  # 40 ASCII bytes, 20 others
    assert prompt_estimate(mixed) == 10 + 10


def test_completion_reservation_multiplies_the_answer_by_the_answers() -> None:
    assert completion_reservation(100, 6, default_max_tokens=1024, tpm=None) == 600
    assert completion_reservation(100, 0, default_max_tokens=1024, tpm=None) == 0  # embeddings
    # No max_tokens: the default, at most a tenth of the tpm, for each answer.
    assert completion_reservation(None, 1, default_max_tokens=1024, tpm=None) == 1024
    assert completion_reservation(None, 3, default_max_tokens=1024, tpm=2000) == 600
    assert completion_reservation(None, 1, default_max_tokens=1024, tpm=5) == 1


def cost(**outcome: object) -> Cost:
    seen = {
        "dispatched": True,
        "status": 200,
        "streamed": True,
        "prompt_tokens": None,
        "completion_tokens": None,
        "relayed_chunks": 0,
        "prompt_estimate": 50,
        "completion_reserved": 400,
        **outcome,
    }
    return request_cost(**seen)  # type: ignore[arg-type]


def test_the_engines_usage_is_the_truth() -> None:
    assert cost(prompt_tokens=7, completion_tokens=3, relayed_chunks=9) == Cost(7, 3)


def test_a_stream_cut_before_its_usage_pays_the_prompt_estimate_and_what_was_relayed() -> None:
    assert cost(relayed_chunks=12) == Cost(50, 12)
    # Cut before the first token: the engine read the prompt all the same.
    assert cost(relayed_chunks=0) == Cost(50, 0)
    assert cost(status=0) == Cost(50, 0)


def test_a_non_streamed_answer_that_never_came_pays_its_reservation() -> None:
    # The engine may have written all of it; leaving early must not make it free.
    assert cost(streamed=False, status=0) == Cost(50, 400)


@pytest.mark.parametrize(
    "outcome",
    [{"dispatched": False}, {"status": 400}, {"status": 503}, {"status": 429}],
)
def test_nothing_is_charged_when_no_engine_ran_it(outcome: dict[str, object]) -> None:
    assert cost(**outcome) == Cost(0, 0)


def test_half_a_usage_is_completed_from_what_is_known() -> None:
    assert cost(prompt_tokens=30, relayed_chunks=4) == Cost(30, 4)
    assert cost(completion_tokens=5) == Cost(50, 5)
