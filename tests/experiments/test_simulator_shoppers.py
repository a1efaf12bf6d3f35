"""The shopper model: deterministic, activity levels matter, sequential intent, responds to recommendations."""

import numpy as np
import pytest

from experiments.simulator.catalog import catalog_generate
from experiments.simulator.metrics import metrics_compute, sessions_run
from experiments.simulator.recommenders import SegmentPopular
from experiments.simulator.shoppers import (
    ACTIVITY_LEVELS,
    ShopperModel,
    population_generate,
    sessions_schedule,
)


def _world(n_customers=600, n_products=300, seed=3):
    catalog = catalog_generate(n_products=n_products, seed=seed)
    population = population_generate(catalog=catalog, n_customers=n_customers, seed=seed)
    return catalog, population, ShopperModel(catalog)


def _run(catalog, population, model, days, seed, recommend="segment"):
    starts, who = sessions_schedule(population=population, days=days, seed=seed)
    rec = SegmentPopular(catalog=catalog, population=population) if recommend == "segment" else recommend
    observe = rec.observe if isinstance(rec, SegmentPopular) else None
    rng = np.random.default_rng(seed)
    return list(
        sessions_run(
            model=model,
            population=population,
            starts=starts,
            customers=who,
            rng=rng,
            recommend=rec,
            observe=observe,
        )
    )


def test_same_seed_gives_identical_sessions():
    logs = []
    for _ in range(2):
        catalog, population, model = _world(n_customers=150)
        logs.append(_run(catalog, population, model, days=10, seed=5))
    assert len(logs[0]) > 50
    assert logs[0] == logs[1]


def test_different_seed_gives_different_sessions():
    catalog, population, model = _world(n_customers=150)
    a = _run(catalog, population.copy(), model, days=10, seed=5)
    b = _run(catalog, population.copy(), model, days=10, seed=6)
    assert [x.events for x in a] != [x.events for x in b]


def test_activity_levels_produce_different_purchase_frequencies():
    catalog, population, model = _world(n_customers=1500, seed=4)
    logs = _run(catalog, population, model, days=45, seed=4)
    orders = np.zeros(population.n)
    visits = np.zeros(population.n)
    for log in logs:
        visits[log.customer] += 1
        orders[log.customer] += bool(log.order)
    per_level = {
        name: (visits[population.activity == k].mean(), orders[population.activity == k].mean())
        for k, name in enumerate(ACTIVITY_LEVELS)
    }
    (fv, fo), (ov, oo), (iv, io) = per_level["frequent"], per_level["occasional"], per_level["infrequent"]
    assert fv > 2 * ov > 2 * 2 * iv * 0.9
    assert fo > 2 * io
    assert fo > oo > io


def test_sequential_intent_a_camera_buyer_looks_at_camera_accessories_next():
    # given: the same customers, with and without a camera bought yesterday
    catalog, population, model = _world(n_customers=800, seed=8)
    names = [s.name for s in catalog.leaf_specs]
    camera_leaf = names.index("Digital Cameras")
    complements = {names.index(n) for n in ("Lenses", "Memory Cards", "Tripods", "Camera Bags")}
    camera = int(catalog.items_in_leaf(camera_leaf)[0])
    with_anchor, without = population.copy(), population.copy()
    for u in range(population.n):
        with_anchor.anchors[u] = [(camera, 9.0)]
        with_anchor.owned[u] = {camera}

    def share_in_complements(pop):
        rng = np.random.default_rng(0)
        hits = total = 0
        for u in range(pop.n):
            log = model.session(population=pop, customer=u, start=10 * 86400.0, rng=rng, recommend=None)
            views = [e.item for e in log.events if e.type == "view"]
            if views:
                total += 1
                hits += int(catalog.leaf[views[0]]) in complements
        return hits / total

    # when / then: the first product looked at is a camera accessory far more often
    after_camera, baseline = share_in_complements(with_anchor), share_in_complements(without)
    assert after_camera > 0.25
    assert after_camera > 3 * baseline


def test_within_a_visit_adding_to_cart_is_often_followed_by_a_complement():
    catalog, population, model = _world(n_customers=1500, seed=2)
    logs = _run(catalog, population, model, days=30, seed=2)
    follows = pairs = 0
    for log in logs:
        views = [e for e in log.events if e.type in ("view", "add_to_cart")]
        for a, b in zip(views, views[1:]):
            if a.type == "add_to_cart":
                nxt = next((e for e in views[views.index(b) :] if e.type == "view"), None)
                if nxt is None:
                    continue
                pairs += 1
                follows += catalog.complements[catalog.leaf[a.item], catalog.leaf[nxt.item]] > 0.1
    assert pairs > 30
    # complements are a few leaves out of ~50; by chance this would be well under 10%
    assert follows / pairs > 0.2


def test_behaviour_is_long_tailed_but_not_trivially_predictable():
    catalog, population, model = _world(n_customers=1500, seed=6)
    logs = _run(catalog, population, model, days=30, seed=6)
    views = np.bincount(
        [e.item for log in logs for e in log.events if e.type == "view"], minlength=catalog.n_products
    )
    top_decile = np.sort(views)[::-1][: catalog.n_products // 10].sum() / views.sum()
    assert 0.2 < top_decile < 0.8  # concentrated, yet far from everyone viewing the same few items
    # a customer's next visit does not simply repeat the previous visit's first category
    first_leaf: dict[int, list[int]] = {}
    for log in logs:
        v = [e.item for e in log.events if e.type == "view"]
        if v:
            first_leaf.setdefault(log.customer, []).append(int(catalog.leaf[v[0]]))
    repeats = [a == b for seq in first_leaf.values() for a, b in zip(seq, seq[1:])]
    assert len(repeats) > 200
    assert 0.05 < np.mean(repeats) < 0.6


def test_session_log_is_well_formed():
    catalog, population, model = _world(n_customers=300)
    logs = _run(catalog, population, model, days=14, seed=1)
    for log in logs:
        ts = [e.t for e in log.events]
        assert ts == sorted(ts)
        assert all(log.start <= t <= log.start + log.duration + 1e-6 for t in ts)
        for e in log.events:
            if e.type == "dwell":
                assert e.dwell_ms > 0
            if e.type == "click" and e.source == "recommendation":
                assert e.placement in ("home", "product", "cart") and 0 <= e.position < 8
        bought: dict[int, int] = {}
        for e in log.events:
            if e.type == "purchase":
                bought[e.item] = bought.get(e.item, 0) + e.quantity
        assert bought == {i: q for i, q, _ in log.order}  # one order per visit, quantities summed
        for imp in log.impressions:
            assert -1 <= imp.clicked < len(imp.items)


def test_relevant_recommendations_get_more_clicks_than_random_ones():
    # a recommender that knows the hidden utilities should beat a random one: the model responds to
    # what is shown, which is what lets the A/B simulator compare recommenders at all
    catalog, population, model = _world(n_customers=500, seed=9)

    def oracle(ctx):
        util = model.utility(population_o, ctx.customer, np.arange(catalog.n_products), ctx.t / 86400)
        util = util + population_o.leaf_aff[ctx.customer][catalog.leaf]
        return [int(i) for i in np.argsort(-util)[: ctx.k] if i != ctx.product]

    rng_r = np.random.default_rng(0)

    def random_rec(ctx):
        return rng_r.choice(catalog.n_products, size=ctx.k, replace=False).tolist()

    population_o = population.copy()
    m_oracle = metrics_compute(_run(catalog, population_o, model, days=14, seed=3, recommend=oracle))
    m_random = metrics_compute(_run(catalog, population.copy(), model, days=14, seed=3, recommend=random_rec))
    assert m_oracle.ctr > 1.5 * m_random.ctr


def test_recommend_none_shows_nothing_and_bad_indices_are_an_error():
    catalog, population, model = _world(n_customers=50)
    rng = np.random.default_rng(0)
    log = model.session(population=population, customer=0, start=0.0, rng=rng, recommend=None)
    assert log.impressions == ()
    with pytest.raises(ValueError, match="outside"):
        for u in range(50):  # the first rendered widget raises
            model.session(
                population=population,
                customer=u,
                start=100.0,
                rng=rng,
                recommend=lambda ctx: [catalog.n_products + 3],
            )


def test_population_demographics_shift_tastes():
    catalog = catalog_generate(n_products=200, seed=0)
    pop = population_generate(catalog=catalog, n_customers=4000, seed=0)
    names = [s.name for s in catalog.leaf_specs]
    consoles = names.index("Consoles")
    young, old = pop.age_band == 0, pop.age_band == 4
    assert pop.leaf_aff[young, consoles].mean() > pop.leaf_aff[old, consoles].mean() + 1.0
    assert pop.price_sens[young].mean() > pop.price_sens[old].mean()
    assert set(np.unique(pop.activity)) == {0, 1, 2}
