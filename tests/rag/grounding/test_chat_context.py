"""Context fitting for file_search chats: pure, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ContextLengthExceeded, InvalidRequest
from gateway.rag.grounding.context import (
    SOURCES_PREAMBLE,
    Budget,
    Costs,
    assemble,
    budget_for,
    estimate_prompt,
    fit_context,
    prompt_costs,
    search_query,
    source_block,
    split_conversation,
)

SYSTEM = {"role": "system", "content": "Be terse."}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def costs(fixed: int, passages: list[int], turns: list[int], preamble: int = 0) -> Costs:
    return Costs(fixed, preamble, passages, turns)


# -- the conversation ------------------------------------------------------------------


def test_split_keeps_system_and_the_last_user_turn_apart_from_history() -> None:
    tool_call: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}
    tool_result: dict[str, Any] = {"role": "tool", "tool_call_id": "c1", "content": "42"}
    messages = [
        SYSTEM,
        user("a"),
        assistant("b"),
        user("c"),
        assistant("d"),
        user("e"),
        tool_call,
        tool_result,
    ]
    conv = split_conversation(messages)
    assert conv.system == [SYSTEM]
    assert conv.turns == [[user("a"), assistant("b")], [user("c"), assistant("d")]]
    assert conv.current == [user("e"), tool_call, tool_result]
    assert conv.last_user_index == 5


def test_an_assistant_greeting_before_any_user_is_a_turn_of_its_own() -> None:
    conv = split_conversation([assistant("hello"), user("q")])
    assert conv.system == [] and conv.turns == [[assistant("hello")]]


def test_no_user_message_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        split_conversation([SYSTEM])
    assert err.value.param == "messages"


def test_query_reads_the_text_parts_of_a_content_array() -> None:
    parts = [
        {"type": "text", "text": "what is"},
        {"type": "image_url", "image_url": {"url": "data:..."}},
        {"type": "text", "text": "the answer?"},
    ]
    conv = split_conversation([SYSTEM, {"role": "user", "content": parts}])
    assert search_query(conv) == "what is\nthe answer?"


def test_a_last_user_turn_without_text_is_a_400_naming_it() -> None:
    image = [{"type": "image_url", "image_url": {"url": "data:..."}}]
    conv = split_conversation([SYSTEM, user("x"), {"role": "user", "content": image}])
    with pytest.raises(InvalidRequest) as err:
        search_query(conv)
    assert err.value.param == "messages[2].content"


# -- the prompt ------------------------------------------------------------------------


def test_sources_go_before_the_last_user_text_in_order() -> None:
    conv = split_conversation([SYSTEM, user("old"), assistant("ans"), user("q")])
    blocks = [source_block(1, "a.md", " alpha "), source_block(2, "b.md", "beta")]
    sent = assemble(conv, blocks, 0)
    assert sent[:3] == [SYSTEM, user("old"), assistant("ans")]
    assert sent[3] == user(
        f"{SOURCES_PREAMBLE}\n\n[1] a.md: alpha\n\n[2] b.md: beta\n\nQuestion:\nq"
    )
    assert assemble(conv, blocks, 1)[:1] == [SYSTEM]
    assert assemble(conv, blocks, 1)[1]["content"].endswith("Question:\nq")
    assert assemble(conv, [], 0) == [SYSTEM, user("old"), assistant("ans"), user("q")]


def test_the_next_turn_starts_with_what_this_turn_sent_before_its_sources() -> None:
    # vLLM's prefix cache reuses a prompt's longest cached prefix: everything but the
    # passages must read the same when the client sends the conversation again.
    first = assemble(split_conversation([SYSTEM, user("q1")]), ["[1] a: x"], 0)
    again = [SYSTEM, user("q1"), assistant("a1"), user("q2")]
    second = assemble(split_conversation(again), ["[1] b: y"], 0)
    assert first[0] == second[0] == SYSTEM
    assert second[1:3] == [user("q1"), assistant("a1")]
    assert "[1] b: y" in second[3]["content"] and second[3]["content"].endswith("q2")


def test_sources_lead_a_last_user_message_given_as_parts() -> None:
    question = {"role": "user", "content": [{"type": "text", "text": "q"}]}
    sent = assemble(split_conversation([SYSTEM, question]), ["[1] a: x"], 0)
    assert sent[0] == SYSTEM
    lead, *rest = sent[1]["content"]
    assert lead["type"] == "text" and "[1] a: x" in lead["text"]
    assert rest == [{"type": "text", "text": "q"}]
    assert question["content"] == [{"type": "text", "text": "q"}]  # not mutated


def test_costs_are_scaled_to_the_measured_total() -> None:
    conv = split_conversation([SYSTEM, user("x" * 400), assistant("y" * 400), user("q" * 40)])
    blocks = [source_block(1, "a", "z" * 800), source_block(2, "b", "w" * 80)]
    estimated = prompt_costs(conv, blocks, None, None)
    total = estimate_prompt(assemble(conv, blocks, 0))
    parts = estimated.preamble + sum(estimated.passages) + sum(estimated.turns)
    assert estimated.fixed + parts == total
    measured = prompt_costs(conv, blocks, None, total * 2)
    assert measured.passages[0] == pytest.approx(2 * estimated.passages[0], abs=1)
    assert measured.fixed + measured.preamble + sum(measured.passages) + sum(measured.turns) == (
        total * 2
    )
    assert estimated.passages[0] > estimated.passages[1]


# -- fitting ---------------------------------------------------------------------------


def test_budget_keeps_the_clients_max_tokens_free() -> None:
    assert budget_for(2048, 100, 1024) == Budget(2048, 100, 100)
    implicit = budget_for(2048, None, 1024)
    assert implicit.reserve == 512 and implicit.required == 1  # a quarter of a small window
    assert budget_for(128_000, None, 1024).reserve == 1024


def test_a_prompt_that_exactly_fits_keeps_everything() -> None:
    budget = Budget(1000, 100, 100)
    plan = fit_context(budget, costs(500, [100, 100], [100], preamble=100))
    assert (plan.passages_kept, plan.passages_dropped, plan.turns_dropped) == (2, 0, 0)
    assert plan.prompt_tokens == 900 and not plan.trimmed


def test_one_token_over_drops_the_weakest_passage() -> None:
    plan = fit_context(Budget(1000, 100, 100), costs(501, [100, 100], [100], preamble=100))
    assert (plan.passages_kept, plan.passages_dropped, plan.turns_dropped) == (1, 1, 0)
    assert plan.prompt_tokens == 801


def test_passages_go_weakest_first_even_when_a_stronger_one_is_bigger() -> None:
    # Dropping the big best passage alone would fit (800), but weaker ones go first.
    plan = fit_context(Budget(1000, 0, 0), costs(640, [300, 50, 50, 50], [], preamble=10))
    assert plan.passages_kept == 2 and plan.prompt_tokens == 1000


def test_the_preamble_goes_with_the_last_passage() -> None:
    plan = fit_context(Budget(1000, 0, 0), costs(990, [5], [], preamble=10))
    assert plan.passages_kept == 0 and plan.prompt_tokens == 990


def test_oldest_turns_go_only_after_every_passage() -> None:
    budget = Budget(1000, 200, 200)
    plan = fit_context(budget, costs(550, [50, 50], [100, 100, 100], preamble=10))
    assert (plan.passages_kept, plan.turns_dropped) == (0, 1)
    assert plan.prompt_tokens == 750


def test_passages_refill_the_room_a_dropped_turn_freed() -> None:
    budget = Budget(1000, 0, 0)
    # Without any passage the prompt fits (960): history stays, passages go.
    plan = fit_context(budget, costs(500, [100, 100, 100], [450, 10], preamble=20))
    assert (plan.passages_kept, plan.turns_dropped, plan.prompt_tokens) == (0, 0, 960)
    # Here it does not (1060): the oldest turn goes, and the passages fit in what it freed.
    plan = fit_context(budget, costs(600, [100, 100, 100], [450, 10], preamble=20))
    assert plan.turns_dropped == 1 and plan.passages_kept == 3
    assert plan.prompt_tokens == 600 + 10 + 20 + 300


def test_system_and_last_turn_fit_alone_with_everything_else_dropped() -> None:
    plan = fit_context(Budget(1000, 100, 100), costs(900, [50], [30, 30], preamble=5))
    assert (plan.passages_kept, plan.passages_dropped, plan.turns_dropped) == (0, 1, 2)
    assert plan.prompt_tokens == 900


def test_what_can_never_be_dropped_overflowing_is_a_context_length_error() -> None:
    with pytest.raises(ContextLengthExceeded) as err:
        fit_context(Budget(1000, 100, 100), costs(950, [50], [30], preamble=5))
    error = err.value
    assert error.status == 400 and error.code == "context_length_exceeded"
    assert error.param == "messages"
    assert error.message.startswith("This model's maximum context length is 1000 tokens.")
    assert "1050 tokens (950 in the messages, 100 in the completion)" in error.message
    assert ": 50 tokens too many" in error.message


def test_one_token_over_with_nothing_to_drop_says_one() -> None:
    with pytest.raises(ContextLengthExceeded) as err:
        fit_context(Budget(1000, 100, 100), costs(901, [], []))
    assert ": 1 tokens too many" in err.value.message


def test_without_max_tokens_the_reserve_is_a_wish_not_a_requirement() -> None:
    budget = budget_for(1000, None, 1024)  # reserve 250, required 1
    plan = fit_context(budget, costs(800, [50], [30]))
    assert (plan.passages_kept, plan.turns_dropped, plan.prompt_tokens) == (0, 1, 800)
    assert fit_context(budget, costs(999, [], [])).prompt_tokens == 999
    with pytest.raises(ContextLengthExceeded) as err:
        fit_context(budget, costs(1000, [10], []))
    assert "your messages resulted in 1000 tokens" in err.value.message
    assert ": 1 tokens too many" in err.value.message


@pytest.mark.parametrize("over", range(0, 12))
def test_every_overflow_drops_the_fewest_parts_in_order(over: int) -> None:
    # Five passages then five turns of one token each around 80 fixed: `over` tokens too
    # many drop exactly `over` parts, passages first; past ten nothing is left to drop.
    budget = Budget(100, 10, 10)
    parts = costs(80 + over, [1] * 5, [1] * 5)
    if over > 10:
        with pytest.raises(ContextLengthExceeded, match=f": {over - 10} tokens too many"):
            fit_context(budget, parts)
        return
    plan = fit_context(budget, parts)
    assert plan.passages_dropped == min(over, 5)
    assert plan.turns_dropped == max(0, over - 5)
    assert plan.prompt_tokens == 90
