"""Every rule reports its effect per item with the item's position before and after (the decision trace
shows these): pure data in, exact effects out."""

from recommender.rules import Candidate, ProductAttrs, RuleContext, RuleSpec, rules_apply
from recommender.serving.trace import RuleEffect

CTX = RuleContext(k=10, now_ts=100 * 86400.0)


def attrs(pid, *, brand=1, cat=1, stock=5, sku=None):
    return ProductAttrs(
        product_id=pid,
        sku=sku or f"SKU-{pid}",
        title=f"P{pid}",
        category_id=cat,
        category_name=f"Cat {cat}",
        category_path=(cat,),
        brand_id=brand,
        price=10.0,
        stock=stock,
        is_active=True,
        created_ts=0.0,
    )


def cands(*pids):
    return [Candidate(product_id=p, score=float(100 - i), engine="t") for i, p in enumerate(pids)]


def effects_of(outcome, pid):
    return [e for p, e in outcome.effects if p == pid]


def test_filter_reports_the_removed_item_and_its_position():
    a = {1: attrs(1), 2: attrs(2, stock=0), 3: attrs(3)}
    out = rules_apply(cands(1, 2, 3), [RuleSpec("in_stock", {})], a, CTX)
    assert effects_of(out, 2) == [RuleEffect("in_stock", "In stock only", "filtered", 1, None)]
    assert effects_of(out, 1) == [] and effects_of(out, 3) == []
    assert [(c.product_id, label) for c, label in out.removed] == [(2, "In stock only")]


def test_boost_and_demote_report_positions_before_and_after():
    # scores 100, 99, 98: brand 2 x1.5 lifts item 3 (98 -> 147) from slot 2 to slot 0
    a = {1: attrs(1, brand=1), 2: attrs(2, brand=1), 3: attrs(3, brand=2)}
    out = rules_apply(cands(1, 2, 3), [RuleSpec("boost_brands", {"brands": [2], "factor": 1.5})], a, CTX)
    assert [c.product_id for c in out.kept] == [3, 1, 2]
    assert effects_of(out, 3) == [RuleEffect("boost_brands", "Boost brands ×1.5", "boosted", 2, 0, "×1.5")]
    assert effects_of(out, 1) == []  # moved down by another item's boost, not touched by the rule
    demote = rules_apply(cands(1, 2, 3), [RuleSpec("boost_brands", {"brands": [1], "factor": 0.5})], a, CTX)
    assert [c.product_id for c in demote.kept] == [3, 1, 2]
    assert [(e.effect, e.position_before, e.position_after) for e in effects_of(demote, 1)] == [
        ("demoted", 0, 1)
    ]
    assert [(e.effect, e.position_before, e.position_after) for e in effects_of(demote, 2)] == [
        ("demoted", 1, 2)
    ]


def test_cap_reports_capped_items_and_pins_report_their_move():
    a = {1: attrs(1, brand=7), 2: attrs(2, brand=7), 3: attrs(3, brand=8), 4: attrs(4, brand=9, sku="PIN")}
    rules = [
        RuleSpec("max_per_brand", {"n": 1}, position=0),
        RuleSpec("pin_skus", {"pins": [{"sku": "PIN", "position": 1}]}, position=1),
    ]
    out = rules_apply(cands(1, 2, 3, 4), rules, a, CTX, pinned_ids={"PIN": 4})
    assert [c.product_id for c in out.kept] == [4, 1, 3]
    assert [(e.rule, e.effect, e.position_before, e.position_after) for e in effects_of(out, 2)] == [
        ("max_per_brand", "capped", 1, None)
    ]
    assert [(e.rule, e.effect, e.position_before, e.position_after) for e in effects_of(out, 4)] == [
        ("pin_skus", "pinned", 2, 0)
    ]


def test_pin_that_fails_a_filter_is_reported_as_filtered_by_that_filter():
    a = {1: attrs(1), 5: attrs(5, stock=0, sku="GONE")}
    rules = [RuleSpec("in_stock", {}), RuleSpec("pin_skus", {"pins": [{"sku": "GONE", "position": 1}]})]
    out = rules_apply(cands(1), rules, a, CTX, pinned_ids={"GONE": 5})
    assert [c.product_id for c in out.kept] == [1]
    assert [(e.rule, e.effect, e.position_before) for e in effects_of(out, 5)] == [
        ("in_stock", "filtered", None)
    ]
    assert [(c.product_id, label) for c, label in out.removed] == [(5, "In stock only")]


def test_diversity_reports_reordered_items():
    # three items of one category/brand then one of another: MMR pulls the different one up
    a = {1: attrs(1), 2: attrs(2), 3: attrs(3), 4: attrs(4, brand=5, cat=6)}
    out = rules_apply(cands(1, 2, 3, 4), [RuleSpec("diversity", {"lambda": 0.3})], a, CTX)
    moved = {p: (e.position_before, e.position_after) for p, e in out.effects if e.effect == "reordered"}
    assert moved[4][0] == 3 and moved[4][1] < 3
    assert all(e.rule == "diversity" for _, e in out.effects)


def test_no_rules_no_effects():
    out = rules_apply(cands(1, 2), [], {}, CTX)
    assert [c.product_id for c in out.kept] == [1, 2] and out.effects == [] and out.removed == []
