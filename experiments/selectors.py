"""Reads for experiments: the snapshot serving uses per request, lists for the admin.

`experiment_for_widget(widget_id=...)` is on the serving hot path: it answers from a process-local memo
checked against a generation token in the shared cache, read together with serving's own generations at
most once a second per process (`recommender.serving.cache.generations_poll`: no cache read per request,
no query). Every start / pause / stop / weight change sets a new token, so the change reaches every worker
within about a second (at once in the process that made it); a cleared or evicted cache also invalidates
the memo. Changes that bypass the services (or a
dead cache) show within `MEMO_SECONDS` (`FALLBACK_SECONDS` while the cache is unreachable).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from recommender.serving.cache import cache_is_down, generation_watch, generations_poll
from recsite.memo import Memo

from .models import Experiment, Exposure, Variant

MEMO_SECONDS = 60.0
FALLBACK_SECONDS = 5.0
GENERATION_KEY = "rs:exp:generation"


@dataclass(frozen=True)
class VariantOverrides:
    """What one arm changes about the widgets it targets; empty / None fields keep the widget's own."""

    id: int
    name: str
    is_control: bool
    weight: int
    strategy: str = ""
    engine: str = ""
    model_version_id: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    rules: tuple[dict[str, Any], ...] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(self.strategy or self.engine or self.model_version_id or self.params or self.rules)


@dataclass(frozen=True)
class ExperimentSnapshot:
    """Everything serving needs to assign and apply a running experiment, as plain values (cacheable)."""

    id: int
    slug: str
    salt: str
    traffic_share: float
    holdout_share: float
    allocation: tuple[int, ...]
    variants: dict[int, VariantOverrides]
    widget_ids: tuple[int, ...] = ()

    @classmethod
    def from_model(
        cls, experiment: Experiment, variants: list[Variant] | None = None, widget_ids: tuple[int, ...] = ()
    ) -> ExperimentSnapshot:
        variants = variants if variants is not None else list(experiment.variants.all())
        return cls(
            id=experiment.pk,
            slug=experiment.slug,
            salt=experiment.salt,
            traffic_share=float(experiment.traffic_share),
            holdout_share=float(experiment.holdout_share),
            allocation=tuple(experiment.allocation or ()),
            variants={
                v.pk: VariantOverrides(
                    id=v.pk,
                    name=v.name,
                    is_control=v.is_control,
                    weight=v.weight,
                    strategy=v.strategy or "",
                    engine=v.engine or "",
                    model_version_id=v.model_version_id,
                    params=dict(v.params or {}),
                    rules=tuple(r for r in (v.rules or []) if isinstance(r, dict)),
                )
                for v in variants
            },
            widget_ids=widget_ids,
        )


def experiment_cache_bump() -> None:
    """Invalidate every worker's snapshot of running experiments (called after status/weight changes)."""
    _memo.clear()
    # cache down: workers refresh from the database within FALLBACK_SECONDS anyway
    with contextlib.suppress(Exception):
        cache.set(GENERATION_KEY, uuid.uuid4().hex, None)


def _snapshot_seconds() -> float:
    return FALLBACK_SECONDS if cache_is_down() else MEMO_SECONDS


# The running experiments, memoised per process; forgotten when GENERATION_KEY changes, which serving polls
# together with its own generations (one cache read per second per process, not one per request).
_memo: Memo[dict[int, ExperimentSnapshot]] = Memo(maxsize=1, ttl=_snapshot_seconds)
generation_watch(GENERATION_KEY, _memo.clear)


def experiments_memo_clear() -> None:
    """Forget this process's snapshot of running experiments (tests, the simulator between runs)."""
    _memo.clear()


def running_experiments_by_widget() -> dict[int, ExperimentSnapshot]:
    """widget id -> snapshot of the running experiment targeting it (two queries, memoised: a change made in
    another process shows within about a second, within FALLBACK_SECONDS while the cache is down)."""
    generations_poll()
    hit = _memo.get("running")
    if hit is not None:
        return hit
    experiments = list(
        Experiment.objects.filter(status=Experiment.Status.RUNNING).prefetch_related("variants", "widgets")
    )
    out: dict[int, ExperimentSnapshot] = {}
    for e in experiments:
        wids = tuple(w.pk for w in e.widgets.all())
        snap = ExperimentSnapshot.from_model(e, list(e.variants.all()), wids)
        if not snap.allocation:
            continue
        for wid in wids:
            out.setdefault(wid, snap)
    _memo.set("running", out)
    return out


def experiment_for_widget(*, widget_id: int) -> ExperimentSnapshot | None:
    return running_experiments_by_widget().get(widget_id)


def experiment_get(*, slug: str) -> Experiment | None:
    return Experiment.objects.filter(slug=slug).prefetch_related("variants", "widgets").first()


def exposure_counts(*, experiment: Experiment) -> dict[str, int]:
    """Exposed subjects per variant name (holdout under "holdout"): one grouped query."""
    from django.db.models import Count

    rows = (
        Exposure.objects.filter(experiment=experiment)
        .values("variant__name", "holdout")
        .annotate(n=Count("id"))
    )
    out: dict[str, int] = {}
    for r in rows:
        name = "holdout" if r["holdout"] else (r["variant__name"] or "")
        out[name] = out.get(name, 0) + r["n"]
    return out


@dataclass(frozen=True)
class Baseline:
    """A metric's recent level, for the sample-size calculator. kind: "binary" (value is a rate) or "mean"."""

    metric: str
    kind: str
    value: float
    sd: float
    units: int  # lists, sessions or orders observed in the window
    unit: str
    per_day: float
    days: int


def metric_baseline(*, metric: str, widget_ids: list[int] | None = None, days: int = 30) -> Baseline | None:
    """The metric's level over the last `days` days (two queries at most); None when there is no data or
    the calculator does not support the metric."""
    from datetime import timedelta

    from django.db.models import Avg, Count, StdDev, Subquery
    from django.utils import timezone

    from catalog.models import Event, Order
    from recommender.models import Impression

    since = timezone.now() - timedelta(days=days)
    if metric == "ctr":
        imps = Impression.objects.filter(created_at__gte=since)
        if widget_ids:
            imps = imps.filter(widget_id__in=widget_ids)
        lists = imps.aggregate(n=Count("request_id", distinct=True))["n"] or 0
        if not lists:
            return None
        clicked = (
            Impression.objects.filter(
                id__in=Subquery(
                    Event.objects.filter(type="click", impression_id__in=Subquery(imps.values("id"))).values(
                        "impression_id"
                    )
                )
            ).aggregate(n=Count("request_id", distinct=True))["n"]
            or 0
        )
        p = clicked / lists
        return Baseline(
            metric, "binary", p, (p * (1 - p)) ** 0.5, lists, "recommendation lists", lists / days, days
        )
    if metric in ("conversion_rate", "add_to_cart_rate"):
        kind = "purchase" if metric == "conversion_rate" else "add_to_cart"
        ev = Event.objects.filter(timestamp__gte=since).exclude(session_id="")
        sessions = ev.aggregate(n=Count("session_id", distinct=True))["n"] or 0
        if not sessions:
            return None
        hits = ev.filter(type=kind).aggregate(n=Count("session_id", distinct=True))["n"] or 0
        p = hits / sessions
        return Baseline(
            metric, "binary", p, (p * (1 - p)) ** 0.5, sessions, "sessions", sessions / days, days
        )
    if metric == "aov":
        agg = Order.objects.filter(created_at__gte=since).aggregate(
            n=Count("id"), m=Avg("total"), s=StdDev("total")
        )
        if not agg["n"] or agg["s"] is None:
            return None
        return Baseline(
            metric, "mean", float(agg["m"]), float(agg["s"]), agg["n"], "orders", agg["n"] / days, days
        )
    return None
