"""The experiments' serving hook (`recommender.serving.hooks.ServingHook`), registered in
`ExperimentsConfig.ready()`: recommender never imports experiments.

`ExperimentServingHook.variant_apply` is `experiment_apply` below; `slate_order` orders a bandit widget's
pool with its policy (`experiments.bandit_serving`).

`experiment_apply(widget=..., customer=..., visitor=..., context=..., log=...)` looks up the running
experiment that targets the widget (a memoised snapshot, no query per request in the steady state),
assigns the shopper (sticky hash, no write), logs the first exposure, and returns the widget as the
shopper's variant sees it (an unsaved copy with the variant's strategy / engine / model version /
params), the variant's rule override (None = the widget's own rules) and the context to log on the
impressions (experiment slug and variant name). Holdout shoppers and the control without overrides
see the widget unchanged but are still tagged, so their impressions count for the analysis.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from recommender.rules import RuleSpec
from recommender.serving.hooks import Slate, VariantApplied

from .selectors import experiment_for_widget
from .services import Assignment, exposure_note, variant_assign

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    widget: Any  # recommender.models.Widget (possibly an unsaved copy with overrides)
    rules: list | None  # list[recommender.rules.RuleSpec] overriding the widget's rules, or None
    context: dict[str, Any]
    assignment: Assignment | None


def subject_of(customer: Any, visitor: str | None) -> str:
    """The id a shopper is assigned by: the customer's external id, else the visitor cookie id."""
    if customer is not None:
        return str(customer.external_id)
    return str(visitor or "")


def widget_with_overrides(widget: Any, over: Any) -> Any:
    """An unsaved copy of `widget` with the variant's overrides (the original is untouched)."""
    w = copy.copy(widget)
    w._state = copy.copy(widget._state)
    w._state.fields_cache = dict(widget._state.fields_cache)
    if over.strategy:
        w.strategy = over.strategy
        if not over.engine:
            w.engine = ""  # the new strategy's default engine, not the widget's engine for the old one
        if not over.model_version_id:
            w.model_version_id = None
    if over.engine:
        w.engine = over.engine
    if over.model_version_id:
        w.model_version_id = over.model_version_id
    if over.params:
        w.params = {**(widget.params or {}), **over.params}
        n = over.params.get("num_items")
        if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 100:
            w.num_items = n  # "show 4 instead of 8" is an experiment too
    return w


def experiment_apply(
    *,
    widget: Any,
    customer: Any = None,
    visitor: str | None = None,
    context: dict[str, Any],
    log: bool = True,
) -> Applied:
    """See the module docstring. Never raises: a broken experiment lookup serves the widget as is."""
    if context.get("experiment"):  # the caller already decided (e.g. an admin preview of a variant)
        return Applied(widget, None, context, None)
    try:
        snap = experiment_for_widget(widget_id=widget.pk)
    except Exception:
        logger.warning("experiment lookup failed for widget %s; serving without it", widget.pk, exc_info=True)
        return Applied(widget, None, context, None)
    if snap is None:
        return Applied(widget, None, context, None)
    subject = subject_of(customer, visitor)
    if not subject:
        return Applied(widget, None, context, None)
    assignment = variant_assign(experiment=snap, subject_id=subject)
    if not assignment.participating:
        return Applied(widget, None, context, assignment)
    if log:
        try:
            exposure_note(assignment=assignment)
        except Exception:
            logger.warning("exposure log failed for %s", snap.slug, exc_info=True)
    ctx = {**context, "experiment": snap.slug, "variant": assignment.label}
    over = assignment.overrides
    if over is None or not over.changes_anything:
        return Applied(widget, None, ctx, assignment)
    w = widget_with_overrides(widget, over)
    w._recsite_variant = f"{snap.slug}/{assignment.label}"
    rules = None
    if over.rules:
        rules = [
            RuleSpec(kind=r["kind"], params=r.get("params") or {}, position=i)
            for i, r in enumerate(over.rules)
        ]
    return Applied(w, rules, ctx, assignment)


class ExperimentServingHook:
    """Running experiments and bandit strategies, plugged into `recommender.serving`."""

    def variant_apply(
        self, *, widget: Any, customer: Any, visitor: str | None, context: dict[str, Any], log: bool
    ) -> VariantApplied:
        applied = experiment_apply(
            widget=widget, customer=customer, visitor=visitor, context=context, log=log
        )
        return VariantApplied(widget=applied.widget, rules=applied.rules, context=applied.context)

    def slate_order(self, *, strategy: str, widget: Any, pool: list[int], customer: Any) -> Slate | None:
        from .bandit_serving import BANDIT_STRATEGIES, DEFAULT_POOL, bandit_slate

        if strategy not in BANDIT_STRATEGIES:
            return None
        size = int((widget.params or {}).get("pool") or DEFAULT_POOL)
        slate = bandit_slate(strategy=strategy, widget=widget, pool=pool[:size], customer=customer)
        return Slate(name=slate.name, items=slate.items, propensities=slate.propensities)
