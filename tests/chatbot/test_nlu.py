from decimal import Decimal

import pytest

from chatbot.dialogue import DialogueState, dialogue_next
from chatbot.nlu import Vocabulary, parse

VOCAB = Vocabulary(
    categories={"headphones": 1, "coffee machines": 2, "cameras": 3}, brands={"sony": 10, "bosch": 11}
)


@pytest.mark.parametrize(
    ("text", "intent", "cats", "brands", "lo", "hi"),
    [
        ("hi", "greet", (), (), None, None),
        ("Sony headphones under $80", "recommend", (1,), (10,), None, Decimal("80")),
        (
            "a coffee machine between 100 and 250 dollars",
            "recommend",
            (2,),
            (),
            Decimal("100"),
            Decimal("250"),
        ),
        ("camera 200-400", "recommend", (3,), (), Decimal("200"), Decimal("400")),
        ("something cheaper", "cheaper", (), (), None, None),
        ("show me more", "more", (), (), None, None),
        ("start over", "reset", (), (), None, None),
        ("hello, I need headphones above 50", "recommend", (1,), (), Decimal("50"), None),
    ],
)
def test_parse_intents_and_slots(text, intent, cats, brands, lo, hi):
    p = parse(text, VOCAB)
    assert (p.intent, p.category_ids, p.brand_ids, p.min_price, p.max_price) == (intent, cats, brands, lo, hi)


def test_parse_similar_reference_and_keywords():
    assert parse("something similar to the second one", VOCAB).reference == 1
    assert parse("wireless noise cancelling", VOCAB).keywords == ("wireless", "noise", "cancelling")


def test_parse_rejects_empty_text():
    with pytest.raises(ValueError):
        parse("   ", VOCAB)


def test_dialogue_accumulates_constraints_and_resets():
    s, _ = dialogue_next(DialogueState(), parse("headphones", VOCAB))
    s, _ = dialogue_next(s, parse("under 80", VOCAB))
    s, _ = dialogue_next(s, parse("sony", VOCAB))
    assert (s.category_ids, s.brand_ids, s.max_price) == ((1,), (10,), "80")
    # a new category starts a new request
    s2, _ = dialogue_next(s, parse("cameras", VOCAB))
    assert (s2.category_ids, s2.brand_ids, s2.max_price) == ((3,), (), None)
    s3, action = dialogue_next(s, parse("start over", VOCAB))
    assert action.kind == "reset" and s3.category_ids == ()


def test_dialogue_cheaper_moves_the_price_window_below_what_was_shown():
    s = DialogueState(category_ids=(1,), last_items=(5, 6), last_prices=("40.00", "55.00"))
    s2, action = dialogue_next(s, parse("cheaper please", VOCAB))
    assert s2.max_price == "40.00" and action.exclude_shown


def test_state_round_trips_through_json():
    s = DialogueState(category_ids=(1,), shown=(3, 4), max_price="9.99", anchor=4)
    assert DialogueState.from_json(s.to_json()) == s
