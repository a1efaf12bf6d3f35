"""Shopper population and the session model (pure Python + numpy; no Django).

Two pieces:

* `population_generate(catalog=..., n_customers=..., seed=...)` draws the customers: demographics
  (age band, gender, region), an activity level (frequent / occasional / infrequent buyers, which sets
  how often they visit), a price sensitivity, and latent tastes over leaf categories, brands, price
  tiers, colours and a small "style" space. Demographics shift the category tastes (18-24s lean to
  gaming and phones, 45+ to kitchen and home comfort, the North buys heaters), so "popular in my
  segment" carries real but partial signal. The `Population` also holds the evolving state: taste
  drift, recent purchases (anchors for sequential intent), an abandoned cart carried to the next
  visit, recently viewed items, ratings owed.

* `ShopperModel(catalog, params).session(population=..., customer=..., start=..., rng=...,
  recommend=...)` plays ONE visit and returns a `SessionLog`. This is the step API the A/B simulator
  reuses: wherever the storefront renders a recommendation widget (home page, product page, cart) the
  model calls `recommend(SessionContext) -> list[product_index]`, shows those items in slots 0..k-1
  and responds with a cascade model: the shopper examines slot p with probability
  `exam_first * exam_decay**p` (position bias) and clicks an examined item with probability
  `sigmoid(click_bias + click_slope * relevance)`, where relevance is the shopper's own (hidden)
  utility for the item plus a bonus when it matches what they are looking for now (the session's
  intent leaf, or a complement of what is in the cart / on screen). The first click ends the scan.
  Clicked items are viewed; whether they are bought depends on utility and price sensitivity, so a
  better recommender raises CTR and conversion only through the shopper's own preferences.
  With `recommend=None` the slots show nothing (no impressions); the seeder passes the
  segment-popularity recommender (`recommenders.SegmentPopular`), the study's "traditional" arm.

Time is in seconds since the start of the simulated window (day d starts at 86400*d).

Page flow of a visit (every transition is random; constants are in `ShopperParams`):
landing (home / search / category listing / the carried-over cart) -> product pages, chosen by a
softmax over utility within the intent leaf, or from a recommendation click -> add to cart
(utility, absolute price vs price sensitivity, stock) -> more browsing, often in a complementary
category (sequential intent) -> cart page -> checkout (cart total vs price sensitivity) or
abandonment (the cart is carried to the next visit). An exit hazard after every page ends the visit.
Each product page emits `view` and `dwell` (with dwell ms); recommendation and search-result clicks
emit `click` (context says which slot); searches emit `search` with a query; ratings for earlier
purchases arrive as `rate` events in a later visit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .catalog import COLOURS, GROUPS, LEAVES, STYLE_DIM, Catalog

AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_P = np.array([0.16, 0.28, 0.24, 0.17, 0.15])
GENDERS: tuple[str, ...] = ("f", "m", "x")
GENDER_P = np.array([0.49, 0.48, 0.03])
REGIONS: tuple[str, ...] = ("North", "South", "East", "West", "Central")
REGION_P = np.array([0.2, 0.25, 0.2, 0.2, 0.15])
ACTIVITY_LEVELS: tuple[str, ...] = ("frequent", "occasional", "infrequent")
ACTIVITY_P = np.array([0.12, 0.33, 0.55])
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
N_SEGMENTS = len(AGE_BANDS) * len(GENDERS)

# Demographic shifts of group tastes; columns follow catalog.GROUPS:
# Cameras, Audio, Computers, Phones, TV & Video, Gaming, Kitchen, Home Comfort, Cleaning, Personal Care
GROUP_BY_AGE = np.array(
    [
        [0.0, 0.5, 0.2, 0.6, -0.3, 1.0, -0.6, -0.4, -0.6, 0.1],
        [0.2, 0.3, 0.3, 0.3, 0.1, 0.4, 0.0, -0.1, -0.1, 0.0],
        [0.2, 0.0, 0.1, 0.0, 0.3, -0.1, 0.4, 0.2, 0.3, 0.0],
        [0.1, -0.2, 0.0, -0.2, 0.3, -0.5, 0.5, 0.4, 0.4, 0.1],
        [0.0, -0.3, -0.3, -0.3, 0.2, -1.0, 0.5, 0.5, 0.4, 0.2],
    ]
)
GROUP_BY_GENDER = np.array(
    [
        [-0.1, 0.0, -0.1, 0.1, -0.2, -0.4, 0.3, 0.1, 0.2, 0.4],
        [0.2, 0.1, 0.2, 0.0, 0.2, 0.4, -0.1, 0.0, -0.1, -0.1],
        [0.0] * 10,
    ]
)
AGE_PRICE_SENS = np.array([1.3, 1.1, 0.95, 0.9, 1.0])


def _leaf_index(name: str) -> int:
    return next(i for i, s in enumerate(LEAVES) if s.name == name)


LEAF_BY_GENDER: dict[int, dict[int, float]] = {
    0: {_leaf_index("Hair Dryers"): 0.9, _leaf_index("Shavers"): -0.8},
    1: {_leaf_index("Shavers"): 0.9, _leaf_index("Hair Dryers"): -0.8},
}
LEAF_BY_REGION: dict[int, dict[int, float]] = {
    0: {_leaf_index("Heaters"): 1.2, _leaf_index("Fans"): -0.8},
    1: {_leaf_index("Fans"): 1.2, _leaf_index("Heaters"): -0.9},
}

# event type codes used in SimEvent.type
VIEW, CLICK, ADD_TO_CART, REMOVE_FROM_CART, PURCHASE, SEARCH, RATE, DWELL = (
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "search",
    "rate",
    "dwell",
)
HOME, LISTING, SEARCH_PAGE, PRODUCT, CART = "home", "listing", "search", "product", "cart"


@dataclass(frozen=True)
class ShopperParams:
    """Behaviour constants. Calibrated (see `metrics.calibration_check`) so that with the
    segment-popularity recommender sessions land near conversion 4.5%, AOV $50, CTR 12% (clicks per
    recommendation list shown) and 180 s per session."""

    session_rate: tuple[float, float, float] = (0.35, 0.09, 0.025)  # visits/day by activity level
    # utility weights
    w_appeal: float = 0.7
    w_style: float = 0.6
    w_rel_price: float = 0.6  # within-category: dearer than the category's norm
    w_fresh: float = 0.5
    fresh_days: float = 21.0
    choice_temperature: float = 1.0
    # recommendation response (cascade model)
    exam_first: float = 0.85
    exam_decay: float = 0.8
    click_bias: float = -3.95
    click_slope: float = 0.6
    intent_bonus: float = 1.2
    complement_bonus: float = 1.0
    seen_penalty: float = 1.0
    owned_penalty: float = 2.5
    # add to cart on a product page
    cart_bias: float = -4.76
    cart_slope: float = 0.7
    cart_price_slope: float = 0.5  # times price sensitivity times log(price / $30)
    cart_price_ref: float = 30.0
    activity_cart_bonus: tuple[float, float, float] = (0.35, 0.0, -0.25)
    # checkout from the cart page
    checkout_bias: float = -0.35
    checkout_price_slope: float = 0.5  # times price sensitivity times log(total / $50)
    checkout_ref: float = 50.0
    go_to_cart_after_add: float = 0.45
    remove_prob: float = 0.06
    # navigation
    landing_search: float = 0.25
    landing_listing: float = 0.15
    landing_cart_if_carried: float = 0.35
    bounce: float = 0.28
    exit_per_page: float = 0.275
    exit_after_purchase: float = 0.7
    listing_after_product: float = 0.6
    complement_after_add: float = 0.5
    complement_after_view: float = 0.12
    sequential_intent: float = 0.5  # at landing, chance a recent purchase's complement is the intent
    anchor_days: float = 14.0
    consumable_cycle_days: float = 25.0
    max_pages: int = 40
    # dwell times (seconds, log-normal medians and sigma)
    dwell_home: float = 9.0
    dwell_listing: float = 14.0
    dwell_search: float = 8.0
    dwell_product: float = 26.0
    dwell_cart: float = 18.0
    dwell_checkout: float = 55.0
    dwell_sigma: float = 0.6
    # taste drift per sqrt(day)
    drift_leaf: float = 0.05
    drift_style: float = 0.04
    satiation: float = 0.8  # a bought durable lowers the wish for another of its kind
    rating_prob: float = 0.18
    rec_slots: int = 8


class SimEvent(NamedTuple):
    """One behaviour event. `item` is a product index (-1 for search); `t` seconds since window start;
    `source` is how the shopper reached a product ("recommendation", "search", "listing", "home",
    "cart"); `placement`/`position` name the recommendation slot for clicks on recommendations."""

    type: str
    item: int
    t: float
    dwell_ms: int = 0
    quantity: int = 1
    price: float = 0.0
    query: str = ""
    source: str = ""
    placement: str = ""
    position: int = -1
    rating: float = -1.0


class RecImpression(NamedTuple):
    """One recommendation list shown: where, when, what (product indices by slot), which slot was clicked (-1)."""

    placement: str
    t: float
    items: tuple[int, ...]
    clicked: int


@dataclass(frozen=True)
class SessionContext:
    """What a recommender callback sees when a widget is rendered.

    placement: "home", "product" or "cart"; product: the product on screen (product page) or -1;
    cart: product indices in the cart; history: the customer's recently viewed products, oldest
    first, including this visit; segment: demographic segment id (age band x gender);
    t: seconds since window start; k: number of slots to fill.
    """

    customer: int
    segment: int
    placement: str
    product: int
    cart: tuple[int, ...]
    history: tuple[int, ...]
    t: float
    k: int


Recommend = Callable[[SessionContext], Sequence[int]]


@dataclass(frozen=True)
class SessionLog:
    """One simulated visit. `order` is ((product, quantity, unit_price), ...) or () when nothing was bought."""

    customer: int
    start: float
    duration: float
    device: str
    events: tuple[SimEvent, ...]
    impressions: tuple[RecImpression, ...]
    order: tuple[tuple[int, int, float], ...]

    @property
    def order_total(self) -> float:
        return round(sum(q * p for _, q, p in self.order), 2)

    @property
    def rec_clicks(self) -> int:
        return sum(1 for imp in self.impressions if imp.clicked >= 0)


@dataclass(eq=False)
class Population:
    """The customers: fixed traits plus the state that evolves as they shop. Index = customer index."""

    age_band: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    activity: np.ndarray
    rate: np.ndarray  # expected visits per day
    device: np.ndarray
    price_sens: np.ndarray
    leaf_aff: np.ndarray  # (n, n_leaves)
    brand_aff: np.ndarray  # (n, n_brands)
    tier_pref: np.ndarray  # (n, 3)
    colour_pref: np.ndarray  # (n, len(COLOURS) + 1); last column 0 for products without colour
    style: np.ndarray  # (n, STYLE_DIM)
    last_seen: np.ndarray  # day of the last visit (drift is applied for the gap)
    anchors: list = field(default_factory=list)  # per customer: [(product, day)] recent purchases/carts
    carry: list = field(default_factory=list)  # per customer: abandoned cart [(product, qty, price)]
    carry_day: np.ndarray | None = None
    history: list = field(default_factory=list)  # per customer: recently viewed products (<= 20)
    owned: list = field(default_factory=list)  # per customer: set of purchased product indices
    ratings_due: list = field(default_factory=list)  # per customer: [(product, rating)]

    @property
    def n(self) -> int:
        return len(self.age_band)

    @property
    def segment(self) -> np.ndarray:
        return self.age_band * len(GENDERS) + self.gender

    def copy(self) -> Population:
        """An independent copy (e.g. one per experiment arm, same customers, separate evolution)."""
        return Population(
            **{
                k: (v.copy() if isinstance(v, np.ndarray) else [x.copy() for x in v])
                for k, v in self.__dict__.items()
            }
        )


def population_generate(*, catalog: Catalog, n_customers: int, seed: int) -> Population:
    """Draw `n_customers` shoppers for `catalog`, deterministically for `seed`."""
    if n_customers < 0:
        raise ValueError("n_customers must be >= 0")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    n = n_customers
    age = rng.choice(len(AGE_BANDS), size=n, p=AGE_P)
    gender = rng.choice(len(GENDERS), size=n, p=GENDER_P)
    region = rng.choice(len(REGIONS), size=n, p=REGION_P)
    activity = rng.choice(len(ACTIVITY_LEVELS), size=n, p=ACTIVITY_P)
    rate = np.array(ShopperParams().session_rate)[activity] * rng.lognormal(-0.08, 0.4, n)
    device = rng.choice(len(DEVICES), size=n, p=[0.58, 0.36, 0.06])
    price_sens = AGE_PRICE_SENS[age] * rng.lognormal(-0.06, 0.35, n)

    n_groups = len(GROUPS)
    group_pref = GROUP_BY_AGE[age] + GROUP_BY_GENDER[gender] + rng.normal(0, 0.8, (n, n_groups))
    hobby = rng.integers(0, n_groups, (n, 2))
    rows = np.arange(n)
    group_pref[rows, hobby[:, 0]] += 1.5
    group_pref[rows, hobby[:, 1]] += rng.uniform(0, 1.2, n)
    leaf_aff = group_pref[:, catalog.leaf_group] + rng.normal(0, 0.6, (n, catalog.n_leaves))
    for g, shifts in LEAF_BY_GENDER.items():
        for leaf, delta in shifts.items():
            leaf_aff[gender == g, leaf] += delta
    for r, shifts in LEAF_BY_REGION.items():
        for leaf, delta in shifts.items():
            leaf_aff[region == r, leaf] += delta

    brand_aff = rng.normal(0, 0.5, (n, catalog.n_brands))
    # price-sensitive shoppers like budget brands, the others premium ones
    ps_c = np.log(price_sens)[:, None]
    tier_pref = np.array([0.5, 0.0, -0.5])[None, :] * ps_c * 2 + rng.normal(0, 0.25, (n, 3))
    colour_pref = np.concatenate([rng.normal(0, 0.4, (n, len(COLOURS))), np.zeros((n, 1))], axis=1)
    style = rng.normal(0, 1, (n, STYLE_DIM))
    return Population(
        age_band=age,
        gender=gender,
        region=region,
        activity=activity,
        rate=rate,
        device=device,
        price_sens=price_sens,
        leaf_aff=leaf_aff,
        brand_aff=brand_aff,
        tier_pref=tier_pref,
        colour_pref=colour_pref,
        style=style,
        last_seen=np.full(n, np.nan),
        anchors=[[] for _ in range(n)],
        carry=[[] for _ in range(n)],
        carry_day=np.full(n, np.nan),
        history=[[] for _ in range(n)],
        owned=[set() for _ in range(n)],
        ratings_due=[[] for _ in range(n)],
    )


def sessions_schedule(
    *, population: Population, days: float, seed: int, params: ShopperParams | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """When each customer visits during [0, days): returns (start seconds, customer index), time-sorted.

    Visits per customer are Poisson(rate * days); weekends are 15% busier and the hour of day follows
    an evening-heavy curve.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    counts = rng.poisson(population.rate * days)
    customers = np.repeat(np.arange(population.n), counts)
    total = customers.size
    n_days = max(1, int(math.ceil(days)))
    day_w = np.array([1.15 if d % 7 in (5, 6) else 1.0 for d in range(n_days)])
    if days < n_days:  # partial last day
        day_w[-1] *= days - (n_days - 1)
    day = rng.choice(n_days, size=total, p=day_w / day_w.sum())
    hour_w = np.array(
        [
            1,
            0.6,
            0.4,
            0.3,
            0.3,
            0.4,
            0.8,
            1.4,
            2,
            2.3,
            2.5,
            2.7,
            3,
            2.8,
            2.6,
            2.6,
            2.8,
            3.2,
            3.8,
            4.4,
            4.8,
            4.4,
            3.2,
            1.9,
        ]
    )
    hour = rng.choice(24, size=total, p=hour_w / hour_w.sum())
    start = day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, total)
    start = np.minimum(start, days * 86400.0 - 1)
    order = np.argsort(start, kind="stable")
    return start[order], customers[order]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


SEARCH_TEMPLATES = (
    "{noun}",
    "{noun} {brand}",
    "{brand} {noun}",
    "cheap {noun}",
    "best {noun}",
    "{noun} {colour}",
    "{leaf}",
)


class ShopperModel:
    """Plays visits for a population over a catalog. Stateless itself; all state lives in `Population`."""

    def __init__(self, catalog: Catalog, params: ShopperParams | None = None) -> None:
        self.catalog = catalog
        self.params = params or ShopperParams()
        self._log_price_ref = np.log(catalog.price / self.params.cart_price_ref).tolist()
        self._comp_cum = np.cumsum(catalog.complements, axis=1)
        self._static = self.params.w_appeal * catalog.appeal
        self._all_items = np.arange(catalog.n_products)
        self._comp_rows = catalog.complements.tolist()
        # plain-Python copies for scalar lookups in the hot loop (numpy scalar indexing is slow)
        self._leaf = catalog.leaf.tolist()
        self._price = catalog.price.tolist()
        self._stock = catalog.stock.tolist()
        self._consumable = catalog.consumable.tolist()

    # ---------- utilities ----------
    def utility(self, population: Population, customer: int, items: np.ndarray, day: float) -> np.ndarray:
        """The shopper's (hidden) utility for `items` at `day`, excluding category affinity."""
        return _Utility(self, population, customer, day)(np.asarray(items))

    def _complement_of(self, leaf: int, r: random.Random) -> int:
        row = self._comp_cum[leaf]
        return int(np.searchsorted(row, r.random() * row[-1], side="right"))

    def _affinity_leaf(self, population: Population, customer: int, rng: np.random.Generator) -> int:
        aff = population.leaf_aff[customer]
        return int(np.argmax(aff + rng.gumbel(size=aff.shape)))

    def _landing_intent(
        self, population: Population, u: int, day: float, r: random.Random, rng: np.random.Generator
    ) -> int:
        p = self.params
        anchors = [(i, d) for i, d in population.anchors[u] if day - d < 60]
        population.anchors[u] = anchors
        if anchors:
            item, d = anchors[-1] if r.random() < 0.6 else anchors[r.randrange(len(anchors))]
            age = day - d
            if self._consumable[item]:
                # re-buy cycle: the wish returns after about consumable_cycle_days
                if age > p.consumable_cycle_days * 0.7 and r.random() < 0.35:
                    return self._leaf[item]
            elif r.random() < p.sequential_intent * math.exp(-age / p.anchor_days):
                return self._complement_of(self._leaf[item], r)
        return self._affinity_leaf(population, u, rng)

    def _drift(self, population: Population, u: int, day: float, rng: np.random.Generator) -> None:
        last = population.last_seen[u]
        if not np.isnan(last) and day > last:
            s = math.sqrt(day - last)
            population.leaf_aff[u] += rng.normal(0, self.params.drift_leaf * s, population.leaf_aff.shape[1])
            population.style[u] += rng.normal(0, self.params.drift_style * s, population.style.shape[1])
        population.last_seen[u] = day

    # ---------- one visit ----------
    def session(
        self,
        *,
        population: Population,
        customer: int,
        start: float,
        rng: np.random.Generator,
        recommend: Recommend | None = None,
    ) -> SessionLog:
        """Play one visit of `customer` starting at `start` seconds; mutates the customer's state.

        `rng` drives every random choice, so the same (state, start, rng state, recommender answers)
        always gives the same log.
        """
        c, p, pop, u = self.catalog, self.params, population, customer
        r = random.Random(int(rng.integers(1 << 62)))  # fast scalar draws, seeded from rng
        rand, gauss = r.random, r.gauss
        day = start / 86400.0
        self._drift(pop, u, day, rng)
        util = _Utility(self, pop, u, day)
        device = DEVICES[pop.device[u]] if rand() < 0.8 else DEVICES[r.randrange(len(DEVICES))]
        segment = int(pop.age_band[u] * len(GENDERS) + pop.gender[u])
        leaf_of, price_of, stock_of, consumable = self._leaf, self._price, self._stock, self._consumable
        owned = pop.owned[u]
        activity_bonus = p.activity_cart_bonus[pop.activity[u]]
        ps = float(pop.price_sens[u])
        sigma = p.dwell_sigma
        events: list[SimEvent] = []
        impressions: list[RecImpression] = []
        t = start
        seen: set[int] = set()
        history = pop.history[u]
        cart: list[list] = []  # [product, qty, price]
        if pop.carry[u] and day - pop.carry_day[u] < 10:
            cart = [list(x) for x in pop.carry[u]]
        pop.carry[u] = []
        for item, rating in pop.ratings_due[u]:
            events.append(SimEvent(RATE, item, t, rating=rating))
        pop.ratings_due[u] = []

        intent = self._landing_intent(pop, u, day, r, rng)
        x = rand()
        carried = p.landing_cart_if_carried if cart else 0.0
        if x < carried:
            page = CART
        elif x < carried + p.landing_search:
            page = SEARCH_PAGE
        elif x < carried + p.landing_search + p.landing_listing:
            page = LISTING
        else:
            page = HOME
        order: tuple[tuple[int, int, float], ...] = ()
        product, source, placement, position = -1, "", "", -1
        pages = 0

        def show(where: str, on_product: int, context_items: list[int], scan: bool = True) -> int:
            """Render a widget and let the shopper scan it (not when `scan` is False: the shopper is
            leaving the page); returns the clicked product or -1."""
            if recommend is None:
                return -1
            ctx = SessionContext(
                customer=u,
                segment=segment,
                placement=where,
                product=on_product,
                cart=tuple(x[0] for x in cart),
                history=tuple(history[-20:]),
                t=t,
                k=p.rec_slots,
            )
            shown = [int(i) for i in recommend(ctx)][: p.rec_slots]
            if not shown:
                return -1
            if min(shown) < 0 or max(shown) >= c.n_products:
                raise ValueError(
                    f"recommend() returned a product index outside 0..{c.n_products - 1}: {shown}"
                )
            if not scan:
                impressions.append(RecImpression(where, t, tuple(shown), -1))
                return -1
            rel = util.relevance(shown, intent, context_items)
            clicked, exam = -1, p.exam_first
            for pos, item in enumerate(shown):
                if rand() >= exam:
                    break
                score = rel[pos]
                if item in seen:
                    score -= p.seen_penalty
                if item in owned and not consumable[item]:
                    score -= p.owned_penalty
                if rand() < _sigmoid(p.click_bias + p.click_slope * score):
                    clicked = pos
                    break
                exam *= p.exam_decay
            impressions.append(RecImpression(where, t, tuple(shown), clicked))
            return shown[clicked] if clicked >= 0 else -1

        while pages < p.max_pages:
            pages += 1
            nxt = None
            if page == HOME:
                dwell = p.dwell_home * math.exp(sigma * gauss(0.0, 1.0))
                clicked = show(HOME, -1, [x[0] for x in cart])
                t += dwell
                if clicked >= 0:
                    product, source, placement, position = (
                        clicked,
                        "recommendation",
                        HOME,
                        impressions[-1].clicked,
                    )
                    events.append(
                        SimEvent(CLICK, clicked, t, source=source, placement=HOME, position=position)
                    )
                    nxt = PRODUCT
                else:
                    nxt = LISTING if rand() < 0.7 else SEARCH_PAGE
            elif page in (LISTING, SEARCH_PAGE):
                chosen = util.choose_in_leaf(intent, seen, rng)
                if page == SEARCH_PAGE:
                    events.append(SimEvent(SEARCH, -1, t, query=self._query(intent, chosen, r)))
                    t += p.dwell_search * math.exp(sigma * gauss(0.0, 1.0))
                    if chosen >= 0:
                        events.append(SimEvent(CLICK, chosen, t, source="search"))
                else:
                    t += p.dwell_listing * math.exp(sigma * gauss(0.0, 1.0))
                if chosen < 0:  # nothing launched in that category yet
                    intent = self._affinity_leaf(pop, u, rng)
                    nxt = LISTING
                else:
                    product, source, placement, position = chosen, page, "", -1
                    nxt = PRODUCT
            elif page == PRODUCT:
                i = product
                events.append(SimEvent(VIEW, i, t, source=source, placement=placement, position=position))
                interest = util.one(i) + 0.5 * (leaf_of[i] == intent)
                dwell = p.dwell_product * math.exp(
                    0.15 * max(min(interest, 3.0), -3.0) + sigma * gauss(0.0, 1.0)
                )
                seen.add(i)
                history.append(i)
                if len(history) > 20:
                    del history[0]
                added = False
                if stock_of[i] > 0 and all(x[0] != i for x in cart):
                    logit = (
                        p.cart_bias
                        + p.cart_slope * interest
                        + activity_bonus
                        - p.cart_price_slope * ps * self._log_price_ref[i]
                    )
                    if i in owned and not consumable[i]:
                        logit -= 3.0
                    if rand() < _sigmoid(logit):
                        qty = 1 + (rand() < 0.3) + (rand() < 0.1) if consumable[i] else 1
                        cart.append([i, qty, price_of[i]])
                        events.append(
                            SimEvent(
                                ADD_TO_CART,
                                i,
                                t + dwell * 0.8,
                                quantity=qty,
                                price=price_of[i],
                                source=source,
                                placement=placement,
                                position=position,
                            )
                        )
                        pop.anchors[u].append((i, day))
                        added = True
                t += dwell
                events.append(SimEvent(DWELL, i, t, dwell_ms=int(dwell * 1000)))
                if added and rand() < p.go_to_cart_after_add:
                    show(PRODUCT, i, [], scan=False)  # rendered, but the shopper heads to the cart
                    nxt = CART
                else:
                    clicked = show(PRODUCT, i, [i] + [x[0] for x in cart])
                    if clicked >= 0:
                        product, source, placement, position = (
                            clicked,
                            "recommendation",
                            PRODUCT,
                            impressions[-1].clicked,
                        )
                        events.append(
                            SimEvent(CLICK, clicked, t, source=source, placement=PRODUCT, position=position)
                        )
                        nxt = PRODUCT
                    else:
                        if (added and rand() < p.complement_after_add) or (
                            not added and rand() < p.complement_after_view
                        ):
                            intent = self._complement_of(leaf_of[i], r)
                        elif rand() > p.listing_after_product:
                            intent = self._affinity_leaf(pop, u, rng)
                        nxt = LISTING if rand() < 0.75 else SEARCH_PAGE
            elif page == CART:
                dwell = p.dwell_cart * math.exp(sigma * gauss(0.0, 1.0))
                for line in list(cart):
                    if rand() < p.remove_prob * (1 + max(0.0, math.log(line[2] / 50))):
                        events.append(
                            SimEvent(
                                REMOVE_FROM_CART, line[0], t + dwell * 0.5, quantity=line[1], price=line[2]
                            )
                        )
                        cart.remove(line)
                t += dwell
                if cart:
                    total = sum(q * pr for _, q, pr in cart)
                    logit = (
                        p.checkout_bias
                        + activity_bonus
                        - p.checkout_price_slope * ps * math.log(total / p.checkout_ref)
                    )
                    if rand() < _sigmoid(logit):
                        t += p.dwell_checkout * math.exp(sigma * gauss(0.0, 1.0))
                        for item, qty, pr in cart:
                            events.append(SimEvent(PURCHASE, item, t, quantity=qty, price=pr))
                            owned.add(item)
                            pop.anchors[u].append((item, day))
                            if not consumable[item]:
                                pop.leaf_aff[u, leaf_of[item]] -= p.satiation
                            if rand() < p.rating_prob:
                                rating = float(
                                    min(5, max(1, round(3.6 + 0.8 * util.one(item) + gauss(0.0, 0.8))))
                                )
                                pop.ratings_due[u].append((item, rating))
                        # a second checkout in the same visit joins the first: one order per visit
                        merged = {item: [qty, pr] for item, qty, pr in order}
                        for item, qty, pr in cart:
                            if item in merged:
                                merged[item][0] += qty
                            else:
                                merged[item] = [qty, pr]
                        order = tuple((item, qty, pr) for item, (qty, pr) in merged.items())
                        cart = []
                        if rand() < p.exit_after_purchase:
                            break
                        nxt = HOME
                if nxt is None:
                    clicked = show(CART, -1, [x[0] for x in cart])
                    if clicked >= 0:
                        product, source, placement, position = (
                            clicked,
                            "recommendation",
                            CART,
                            impressions[-1].clicked,
                        )
                        events.append(
                            SimEvent(CLICK, clicked, t, source=source, placement=CART, position=position)
                        )
                        nxt = PRODUCT
                    else:
                        nxt = LISTING
            # exit hazard (a shopper who just clicked a product always sees its page)
            hazard = p.bounce if pages == 1 else p.exit_per_page
            if nxt != PRODUCT and rand() < hazard:
                break
            if nxt == LISTING and page == CART and cart and rand() < 0.5:
                break  # left the cart page without buying
            page = nxt
        if cart:
            pop.carry[u] = [tuple(x) for x in cart]
            pop.carry_day[u] = day
        events.sort(key=lambda e: e.t)
        return SessionLog(
            customer=u,
            start=start,
            duration=t - start,
            device=device,
            events=tuple(events),
            impressions=tuple(impressions),
            order=order,
        )

    def _query(self, leaf: int, chosen: int, r: random.Random) -> str:
        spec = self.catalog.leaf_specs[leaf]
        tpl = SEARCH_TEMPLATES[r.randrange(len(SEARCH_TEMPLATES))]
        brand = self.catalog.brands[self.catalog.brand[chosen]].name if chosen >= 0 else ""
        colour = (
            COLOURS[self.catalog.colour[chosen]] if chosen >= 0 and self.catalog.colour[chosen] >= 0 else ""
        )
        if ("{brand}" in tpl and not brand) or ("{colour}" in tpl and not colour):
            tpl = "{noun}"
        return tpl.format(
            noun=spec.noun.lower(), brand=brand.lower(), colour=colour, leaf=spec.name.lower()
        ).strip()


class _Utility:
    """One shopper's utilities during one visit (tastes are fixed within a visit), cached per leaf."""

    __slots__ = (
        "m",
        "brand_row",
        "style_u",
        "colour_row",
        "tier_row",
        "ps",
        "day",
        "aff",
        "aff_mean",
        "_leaf",
        "_full",
        "aff_list",
    )
    # Up to this many products, one vectorised pass over the whole catalog per visit is cheaper than
    # many small ones; above it, utilities are computed per category as the shopper browses.
    FULL_LIMIT = 5000

    def __init__(self, model: ShopperModel, population: Population, u: int, day: float) -> None:
        self.m = model
        self.brand_row = population.brand_aff[u]
        self.style_u = population.style[u]
        self.colour_row = population.colour_pref[u]
        self.tier_row = population.tier_pref[u]
        self.ps = float(population.price_sens[u])
        self.day = day
        self.aff = population.leaf_aff[u]
        self.aff_mean = float(self.aff.mean())
        self.aff_list = self.aff.tolist()
        self._leaf: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._full = None
        if model.catalog.n_products <= self.FULL_LIMIT:
            self._full = self._compute(model._all_items)

    def __call__(self, items: np.ndarray) -> np.ndarray:
        if self._full is not None:
            return self._full[items]
        return self._compute(items)

    def _compute(self, items: np.ndarray) -> np.ndarray:
        m = self.m
        c, p = m.catalog, m.params
        age = self.day - c.created_day[items]
        return (
            m._static[items]
            + self.brand_row[c.brand[items]]
            + p.w_style * (c.style[items] @ self.style_u)
            + self.colour_row[c.colour[items]]
            + self.tier_row[c.tier[items]]
            - (self.ps * p.w_rel_price) * c.rel_log_price[items]
            + p.w_fresh * np.exp(-np.maximum(age, 0.0) / p.fresh_days)
        )

    def one(self, item: int) -> float:
        if self._full is not None:
            return float(self._full[item])
        leaf = self.m._leaf[item]
        cached = self._leaf.get(leaf)
        if cached is not None:
            j = int(np.searchsorted(cached[0], item))
            if j < cached[0].size and cached[0][j] == item:
                return float(cached[1][j])
        return float(self(np.array([item]))[0])

    def leaf(self, leaf: int) -> tuple[np.ndarray, np.ndarray]:
        """(products in `leaf` launched by now, their utilities)."""
        cached = self._leaf.get(leaf)
        if cached is None:
            items = self.m.catalog.items_in_leaf(leaf)
            items = items[self.m.catalog.created_day[items] <= self.day]
            cached = (items, self(items))
            self._leaf[leaf] = cached
        return cached

    def choose_in_leaf(self, leaf: int, avoid: set[int], rng: np.random.Generator) -> int:
        """A product from `leaf` drawn by softmax over utility (Gumbel-max); already-seen ones are less likely."""
        items, util = self.leaf(leaf)
        if items.size == 0:
            return -1
        g = util / self.m.params.choice_temperature + rng.gumbel(size=util.shape)
        if avoid and items.size > 1:
            for j, it in enumerate(items.tolist()):
                if it in avoid:
                    g[j] -= 1.5
        return int(items[int(np.argmax(g))])

    def relevance(self, items: list[int], intent: int, context_items: list[int]) -> list[float]:
        """How attractive recommended `items` are right now: utility + category taste + intent match
        (the session's intent leaf, or a complement of the product on screen / in the cart)."""
        m = self.m
        p = m.params
        leaf_of, aff, comp = m._leaf, self.aff_list, m._comp_rows
        util = self(np.asarray(items)).tolist()
        ctx_leaves = {leaf_of[i] for i in context_items}
        out = []
        for j, item in enumerate(items):
            leaf = leaf_of[item]
            score = util[j] + 0.8 * (aff[leaf] - self.aff_mean)
            if leaf == intent:
                score += p.intent_bonus
            if ctx_leaves:
                score += p.complement_bonus * max(comp[cl][leaf] for cl in ctx_leaves)
            out.append(score)
        return out
