"""Shop events -> engine training data (`InteractionData`) with the maps back to products and shoppers.

The one place where Django rows become arrays. Everything after this module (engines, evaluation) works
on item and user *indices*; `ShopData` carries the maps between indices and the shop's ids.

Users
    A known customer is one user (`"c:<customer pk>"`). An anonymous visitor is one user
    (`"v:<visitor id>"`) unless the visitor is linked to a customer (`Visitor.customer`, set on login),
    in which case its events count for that customer.

Weights
    Each product event adds `event_weights[type]` to its (user, item) cell: view 1, click 2,
    add_to_cart 4, purchase 8 by default. A rating adds `event_weights["rate"] * (rating - 2)` when the
    rating is above 2 stars (1-2 stars is a dislike, not an interest, so it adds nothing). Types with
    weight 0 (remove_from_cart, dwell: a dwell reading measures a view that is already logged) are
    left out of the matrix *and* the sequences.

Sequences and sessions
    Per user, item indices in time order (ties broken by event id); consecutive repeats of the same item
    (view -> click -> add_to_cart of one product) collapse to one step, later returns to an item are kept.
    Sessions are the same per `Event.session_id` (for session engines and "bought together").

Cost
    One events query (the ORM's SQL, run on a raw cursor in chunks, timestamps as epoch seconds computed
    in SQL), one for visitor links, two for products/categories; everything else is numpy (`lexsort`,
    `split`, `bincount`). Measured (benchmarks/bench_training.py, 1M events, shared busy 2-core machine):
    17-21 s on PostgreSQL or SQLite, most of it the database driver building row tuples; that is less
    than (PostgreSQL) or about the same as (SQLite) merely iterating the rows through the ORM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp
from django.db import NotSupportedError, connections
from django.db.models import FloatField, Func

from catalog.event_weights import INTERACTION_WEIGHTS
from catalog.models import Category, Customer, Event, Product, Visitor
from recommender.engines.base import InteractionData, ItemFeatures

# The one table of event weights (catalog.event_weights), its interaction column.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = dict(INTERACTION_WEIGHTS)
RATING_NEUTRAL = 2.0
_CHUNK = 50_000


@dataclass(frozen=True)
class EventArrays:
    """The weighted product events, one entry per event, sorted by (timestamp, event id).

    user/item are indices into `ShopData`'s maps; session is an index into `session_keys` (-1: none).
    """

    user: np.ndarray  # (n,) int64
    item: np.ndarray  # (n,) int64
    weight: np.ndarray  # (n,) float32
    timestamp: np.ndarray  # (n,) float64 unix seconds
    session: np.ndarray  # (n,) int64, -1 when the event had no session id
    event_id: np.ndarray  # (n,) int64 database primary key
    type: np.ndarray  # (n,) int8 index into `types`
    types: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: np.ndarray) -> EventArrays:
        return replace(
            self,
            user=self.user[mask],
            item=self.item[mask],
            weight=self.weight[mask],
            timestamp=self.timestamp[mask],
            session=self.session[mask],
            event_id=self.event_id[mask],
            type=self.type[mask],
        )


@dataclass(frozen=True)
class ShopData:
    """Training data for engines plus the maps between indices and the shop's ids.

    data.item_ids == product_ids (Product pks by item index); data.user_ids == user_keys
    ("c:<customer pk>" / "v:<visitor id>" by user index).
    """

    data: InteractionData
    product_ids: np.ndarray
    user_keys: np.ndarray
    events: EventArrays
    category_ids: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )  # category index -> pk
    brand_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # brand index -> pk
    max_event_id: int = 0
    event_weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return len(self.events)

    @property
    def first_event_at(self) -> datetime | None:
        return _to_datetime(self.events.timestamp.min()) if len(self.events) else None

    @property
    def last_event_at(self) -> datetime | None:
        return _to_datetime(self.events.timestamp.max()) if len(self.events) else None

    def product_index(self) -> dict[int, int]:
        """Product pk -> item index."""
        return {int(p): i for i, p in enumerate(self.product_ids)}

    def user_index(self) -> dict[str, int]:
        """User key ("c:<pk>" / "v:<visitor id>") -> user index."""
        return {str(k): i for i, k in enumerate(self.user_keys)}

    def snapshot(self) -> dict:
        """A JSON-able summary (stored on TrainingRun/ModelVersion.data_snapshot)."""
        first, last = self.first_event_at, self.last_event_at
        return {
            "events": self.n_events,
            "users": self.data.n_users,
            "items": self.data.n_items,
            "interactions": int(self.data.matrix.nnz),
            "sessions": len(self.data.sessions or ()),
            "first_event_at": first.isoformat() if first else None,
            "last_event_at": last.isoformat() if last else None,
            "max_event_id": self.max_event_id,
        }


@dataclass(frozen=True)
class ShopSplit:
    """A global temporal split of the shop's events at `cut`.

    train:        everything strictly before the cut, in the SAME user/item index space as the full data
                  (users whose events are all after the cut have empty rows).
    test_users:   user indices with history before the cut and at least one new item after it.
    test_items:   per test user, the items first touched after the cut that are not in their history.
    """

    cut: datetime
    train: InteractionData
    test_users: np.ndarray
    test_items: list[np.ndarray]
    n_train_events: int
    n_test_events: int

    @property
    def histories(self) -> list[np.ndarray]:
        """Each test user's training sequence (the history an engine recommends from)."""
        return [self.train.sequences[u] for u in self.test_users]


def user_key_customer(customer_id: int) -> str:
    return f"c:{customer_id}"


def user_key_visitor(visitor_id: str) -> str:
    return f"v:{visitor_id}"


def _to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=UTC)


def _event_weights(event_weights: Mapping[str, float] | None) -> dict[str, float]:
    weights = dict(DEFAULT_EVENT_WEIGHTS)
    if event_weights:
        unknown = set(event_weights) - set(Event.Type.values)
        if unknown:
            raise ValueError(f"Unknown event types in event_weights: {', '.join(sorted(unknown))}")
        weights.update({k: float(v) for k, v in event_weights.items()})
    return weights


class EpochSeconds(Func):
    """A datetime column as float unix seconds, computed in SQL (SQLite, PostgreSQL, MySQL)."""

    output_field = FloatField()
    arity = 1

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"EpochSeconds is not implemented for {connection.vendor}")

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores aware datetimes as UTC text; julianday() reads it (millisecond precision).
        return self.as_sql_template(
            compiler, connection, "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql_template(
            compiler, connection, "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
        )

    def as_mysql(self, compiler, connection, **extra_context):
        return self.as_sql_template(compiler, connection, "UNIX_TIMESTAMP(%(expressions)s)")

    def as_sql_template(self, compiler, connection, template):
        return super().as_sql(compiler, connection, template=template)


def _load_events(
    *, since: datetime | None, until: datetime | None, types: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Raw event columns as arrays (unsorted); visitor ids and session ids as object arrays."""
    qs = Event.objects.filter(product__isnull=False, type__in=types).order_by()
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    if until is not None:
        qs = qs.filter(timestamp__lt=until)
    # Read through a raw cursor on the ORM's own SQL: the timestamp comes back as float epoch seconds
    # computed by the database, and no per-row Django converter runs (converting 10^6 datetimes in
    # Python costs more than the query itself).
    qs = qs.annotate(epoch=EpochSeconds("timestamp"))
    cols = ("id", "customer_id", "visitor_id", "session_id", "product_id", "type", "epoch", "rating")
    sql, params = qs.values_list(*cols).query.get_compiler(using=qs.db).as_sql()
    ids, customers, visitors, sessions, products, kinds, stamps, ratings = ([] for _ in cols)
    type_names = np.array(types)
    type_order = np.argsort(type_names)
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_CHUNK):
            c_id, c_cust, c_vis, c_sess, c_prod, c_type, c_ts, c_rating = zip(*chunk)
            ids.append(np.array(c_id, dtype=np.int64))
            # None -> nan in a float array, then -1 for "no customer"
            customers.append(np.nan_to_num(np.array(c_cust, dtype=np.float64), nan=-1).astype(np.int64))
            visitors.append(np.array(c_vis, dtype=object))
            sessions.append(np.array(c_sess, dtype=object))
            products.append(np.array(c_prod, dtype=np.int64))
            pos = np.searchsorted(type_names[type_order], np.array(c_type))
            kinds.append(type_order[pos].astype(np.int8))
            stamps.append(np.array(c_ts, dtype=np.float64))
            ratings.append(np.array(c_rating, dtype=np.float64))

    def cat(parts: list[np.ndarray], dtype: object) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    arrays = {
        "id": cat(ids, np.int64),
        "customer": cat(customers, np.int64),
        "product": cat(products, np.int64),
        "type": cat(kinds, np.int8),
        "timestamp": cat(stamps, np.float64),
        "rating": cat(ratings, np.float64),
    }
    return arrays, cat(visitors, object), cat(sessions, object)


def _item_features(product_ids: np.ndarray) -> tuple[ItemFeatures, np.ndarray, np.ndarray]:
    """ItemFeatures aligned with `product_ids`, plus the category and brand pks by feature index."""
    rows = list(
        Product.objects.order_by("id").values_list(
            "id",
            "title",
            "description",
            "brand_id",
            "brand__name",
            "category_id",
            "price",
            "created_at",
            "attributes",
        )
    )
    by_id = {r[0]: r for r in rows}
    categories = {c[0]: c for c in Category.objects.values_list("id", "name", "parent_id")}

    def lineage(cid: int | None) -> list[int]:
        chain, seen = [], set()
        while cid is not None and cid not in seen and cid in categories:
            seen.add(cid)
            chain.append(cid)
            cid = categories[cid][2]
        return chain

    category_ids = np.array(sorted(categories), dtype=np.int64)
    cat_index = {int(c): i for i, c in enumerate(category_ids)}
    brand_ids = np.array(sorted({r[3] for r in rows if r[3] is not None}), dtype=np.int64)
    brand_index = {int(b): i for i, b in enumerate(brand_ids)}

    n = len(product_ids)
    texts: list[str] = []
    category = np.full(n, -1, dtype=np.int64)
    brand = np.full(n, -1, dtype=np.int64)
    price = np.full(n, np.nan, dtype=np.float64)
    created = np.full(n, np.nan, dtype=np.float64)
    vocab: dict[str, int] = {}
    attr_rows: list[int] = []
    attr_cols: list[int] = []
    for i, pid in enumerate(product_ids):
        r = by_id.get(int(pid))
        if r is None:
            texts.append("")
            continue
        _, title, description, brand_id, brand_name, category_id, p, created_at, attributes = r
        chain = lineage(category_id)
        cat_names = " > ".join(categories[c][1] for c in reversed(chain))
        texts.append(" ".join(s for s in (title, description or "", brand_name or "", cat_names) if s))
        category[i] = cat_index.get(category_id, -1)
        brand[i] = brand_index.get(brand_id, -1) if brand_id is not None else -1
        price[i] = float(p) if p is not None else np.nan
        created[i] = created_at.timestamp() if created_at else np.nan
        tokens = [f"category:{c}" for c in chain]
        if brand_id is not None:
            tokens.append(f"brand:{brand_id}")
        tokens.extend(_attribute_tokens(attributes))
        for tok in set(tokens):
            attr_rows.append(i)
            attr_cols.append(vocab.setdefault(tok, len(vocab)))
    attributes = sp.csr_matrix(
        (np.ones(len(attr_rows), dtype=np.float32), (attr_rows, attr_cols)), shape=(n, max(len(vocab), 1))
    )
    features = ItemFeatures(
        texts=texts, attributes=attributes, category=category, brand=brand, price=price, created=created
    )
    return features, category_ids, brand_ids


def _attribute_tokens(attributes: object) -> list[str]:
    """`{"color": "red", "tags": ["a", "b"]}` -> ["attr:color=red", "attr:tags=a", "attr:tags=b"]."""
    if not isinstance(attributes, dict):
        return []
    tokens = []
    for key, value in attributes.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str | int | bool) and len(str(v)) <= 64:
                tokens.append(f"attr:{key}={str(v).strip().lower()}")
    return tokens


def _collapse_repeats(group: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Mask keeping the first of each run of the same item within a group (arrays in group/time order)."""
    keep = np.ones(len(item), dtype=bool)
    if len(item) > 1:
        keep[1:] = (item[1:] != item[:-1]) | (group[1:] != group[:-1])
    return keep


def interaction_data_build(
    *,
    events: EventArrays,
    n_users: int,
    n_items: int,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    item_features: ItemFeatures,
    n_sessions: int = 0,
    user_groups: dict[str, np.ndarray] | None = None,
) -> InteractionData:
    """`InteractionData` from time-sorted weighted events in a fixed user/item index space."""
    matrix = sp.csr_matrix(
        (events.weight.astype(np.float32), (events.user, events.item)),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    # Events are already in time order, so a stable sort by user keeps each user's events in time order.
    order = np.argsort(events.user, kind="stable")
    u, it, ts = events.user[order], events.item[order], events.timestamp[order]
    keep = _collapse_repeats(u, it)
    u, it, ts = u[keep], it[keep], ts[keep]
    counts = np.bincount(u, minlength=n_users)
    bounds = np.cumsum(counts)[:-1]
    sequences = np.split(it, bounds)
    timestamps = np.split(ts, bounds)
    sessions: list[np.ndarray] = []
    has_session = events.session >= 0
    if n_sessions and has_session.any():
        s_order = np.argsort(events.session[has_session], kind="stable")
        s, s_it = events.session[has_session][s_order], events.item[has_session][s_order]
        keep = _collapse_repeats(s, s_it)
        s, s_it = s[keep], s_it[keep]
        s_counts = np.bincount(s, minlength=n_sessions)
        sessions = [x for x in np.split(s_it, np.cumsum(s_counts)[:-1]) if len(x)]
    return InteractionData(
        matrix=matrix,
        sequences=sequences,
        user_ids=user_ids,
        item_ids=item_ids,
        timestamps=timestamps,
        sessions=sessions,
        item_features=item_features,
        user_groups=user_groups,
    )


def interaction_data_from_events(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event_weights: Mapping[str, float] | None = None,
) -> ShopData:
    """Build engine training data from the shop's events in [since, until).

    Items are every product in the catalogue (so content engines can serve items nobody has touched
    yet), in primary-key order. Users are the shoppers with at least one weighted event. Raises
    ValueError for unknown event types in `event_weights`.
    """
    weights = _event_weights(event_weights)
    types = tuple(t for t, w in weights.items() if w > 0 and t in Event.PRODUCT_TYPES)
    raw, visitors, session_keys_raw = _load_events(since=since, until=until, types=types)
    max_event_id = int(raw["id"].max()) if len(raw["id"]) else 0

    # Weight per event (ratings scale by stars above neutral; non-positive weights drop out).
    type_weight = np.array([weights[t] for t in types], dtype=np.float64)
    w = type_weight[raw["type"]] if len(types) else np.zeros(0)
    if "rate" in types:
        is_rate = raw["type"] == types.index("rate")
        stars = np.nan_to_num(raw["rating"][is_rate], nan=0.0)
        w[is_rate] = weights["rate"] * np.clip(stars - RATING_NEUTRAL, 0.0, None)
    positive = w > 0

    # Visitor events count for the customer the visitor logged in as.
    customers = raw["customer"]
    anonymous = customers < 0
    if anonymous.any():
        linked = dict(
            Visitor.objects.filter(
                customer__isnull=False, id__in=set(visitors[anonymous].tolist())
            ).values_list("id", "customer_id")
        )
        if linked:
            customers = customers.copy()
            idx = np.flatnonzero(anonymous)
            customers[idx] = [linked.get(v, -1) for v in visitors[idx]]
            anonymous = customers < 0

    keep = positive & ~(anonymous & (visitors == ""))
    customers, visitors, session_keys_raw = customers[keep], visitors[keep], session_keys_raw[keep]
    anonymous = anonymous[keep]
    for key in raw:
        raw[key] = raw[key][keep]
    w = w[keep]

    # User index: customers first (pk order), then anonymous visitors (first-seen order).
    customer_ids = np.unique(customers[~anonymous])
    user = np.empty(len(customers), dtype=np.int64)
    user[~anonymous] = np.searchsorted(customer_ids, customers[~anonymous])
    visitor_codes, visitor_uniques = pd.factorize(visitors[anonymous])
    user[anonymous] = len(customer_ids) + visitor_codes
    user_keys = np.array(
        [user_key_customer(int(c)) for c in customer_ids]
        + [user_key_visitor(str(v)) for v in visitor_uniques],
        dtype=object,
    )

    product_ids = np.array(Product.objects.order_by("id").values_list("id", flat=True), dtype=np.int64)
    item = np.searchsorted(product_ids, raw["product"])  # every event's product exists (FK)
    session_codes, session_uniques = pd.factorize(session_keys_raw)
    session_codes = session_codes.astype(np.int64)
    session_codes[session_keys_raw == ""] = -1

    order = np.lexsort((raw["id"], raw["timestamp"]))
    events = EventArrays(
        user=user[order],
        item=item.astype(np.int64)[order],
        weight=w[order].astype(np.float32),
        timestamp=raw["timestamp"][order],
        session=session_codes[order],
        event_id=raw["id"][order],
        type=raw["type"][order],
        types=types,
    )
    item_features, category_ids, brand_ids = _item_features(product_ids)
    data = interaction_data_build(
        events=events,
        n_users=len(user_keys),
        n_items=len(product_ids),
        user_ids=user_keys,
        item_ids=product_ids,
        item_features=item_features,
        n_sessions=len(session_uniques),
        user_groups=_user_groups(customer_ids, n_users=len(user_keys)),
    )
    return ShopData(
        data=data,
        product_ids=product_ids,
        user_keys=user_keys,
        events=events,
        category_ids=category_ids,
        brand_ids=brand_ids,
        max_event_id=max_event_id,
        event_weights=weights,
    )


def _user_groups(customer_ids: np.ndarray, *, n_users: int) -> dict[str, np.ndarray]:
    """Demographic labels per user index for fairness slices ("" for visitors and unknown values).

    Only customers who consented to full personalization contribute their demographics.
    """
    gender = np.full(n_users, "", dtype=object)
    age_band = np.full(n_users, "", dtype=object)
    if len(customer_ids):
        rows = Customer.objects.filter(
            id__in=customer_ids.tolist(), consent=Customer.Consent.FULL
        ).values_list("id", "gender", "age_band")
        for cid, g, a in rows:
            i = int(np.searchsorted(customer_ids, cid))
            gender[i], age_band[i] = g, a
    return {"gender": gender, "age_band": age_band}


def shop_temporal_split(
    shop: ShopData,
    *,
    test_fraction: float = 0.1,
    cut: datetime | None = None,
    max_test_users: int | None = None,
    seed: int = 0,
) -> ShopSplit:
    """Hold out the last `test_fraction` of the shop's events by time (a global cut).

    The model trains on everything before the cut; each user who was active before the cut is asked for
    the items they touched after it that were not already in their history (already-seen items are
    excluded from recommendations, so they could never be hit). Users with no history before the cut
    (cold starts) are not scored here. `cut` overrides `test_fraction`. `max_test_users` samples that
    many test users (seeded) to bound evaluation time.

    This splits the *events* (keeping their weights), not an `InteractionData`: that is why it lives
    here and not in the pure `recommender.evaluation` package.
    """
    ev = shop.events
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be strictly between 0 and 1")
    if cut is None:
        if not len(ev):
            raise ValueError("No events to split")
        cut_ts = float(np.quantile(ev.timestamp, 1.0 - test_fraction))
        cut = _to_datetime(cut_ts)
    cut_ts = cut.timestamp()
    before = ev.timestamp < cut_ts
    train_events, test_events = ev.subset(before), ev.subset(~before)
    data = shop.data
    train = interaction_data_build(
        events=train_events,
        n_users=data.n_users,
        n_items=data.n_items,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        item_features=data.item_features,
        n_sessions=int(ev.session.max()) + 1 if len(ev) else 0,
        user_groups=data.user_groups,
    )
    # Targets: (user, item) pairs after the cut, users with a training history, items new to them.
    seen = train.matrix
    pairs = (
        np.unique(np.stack([test_events.user, test_events.item], axis=1), axis=0)
        if len(test_events)
        else None
    )
    test_users: list[int] = []
    test_items: list[np.ndarray] = []
    if pairs is not None:
        has_history = np.diff(seen.indptr) > 0
        pairs = pairs[has_history[pairs[:, 0]]]
        if len(pairs):
            already = np.asarray(seen[pairs[:, 0], pairs[:, 1]]).ravel() > 0
            pairs = pairs[~already]
        users, starts = np.unique(pairs[:, 0], return_index=True) if len(pairs) else (np.zeros(0, int), None)
        if len(users):
            groups = np.split(pairs[:, 1], starts[1:])
            test_users, test_items = users.tolist(), list(groups)
    users_arr = np.asarray(test_users, dtype=np.int64)
    if max_test_users is not None and len(users_arr) > max_test_users:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(users_arr), size=max_test_users, replace=False))
        users_arr = users_arr[pick]
        test_items = [test_items[i] for i in pick]
    return ShopSplit(
        cut=cut,
        train=train,
        test_users=users_arr,
        test_items=test_items,
        n_train_events=len(train_events),
        n_test_events=len(test_events),
    )
