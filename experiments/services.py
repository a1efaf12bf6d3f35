"""Experiment lifecycle and assignment (writes). Reads live in `experiments.selectors`.

* `experiment_start` validates the set-up (at least two variants, exactly one control, positive weights,
  at least one target widget, no other running experiment on the same widget, valid overrides), builds
  the bucket -> variant allocation table on the first start and rebalances it (minimal moves, see
  `experiments.assignment`) when the weights changed while it was paused or running.
* `experiment_pause` / `experiment_stop` move the status; a paused or stopped experiment is not applied
  by serving (everyone sees the widget's own configuration) and logs no exposures.
* `variant_assign` is pure arithmetic on a cached snapshot: no database write per request.
* `exposures_log` writes first exposures in bulk with `ignore_conflicts` (one row per subject ever).

Every validation failure raises `django.core.exceptions.ValidationError` with a message a merchandiser
can act on; the admin shows it as an error, the `simulate` command as a CommandError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from recommender.models import Widget

from .assignment import allocation_build, allocation_rebalance, in_holdout, in_traffic, variant_for
from .models import Experiment, Exposure, Variant
from .selectors import ExperimentSnapshot, VariantOverrides, experiment_cache_bump

BANDIT_STRATEGIES = frozenset({"epsilon_greedy", "thompson", "linucb"})


@dataclass(frozen=True)
class Assignment:
    """Where one shopper stands in one experiment.

    participating: inside the traffic share; holdout: participating but held out (sees the widget's
    default); variant / variant_id: the arm (None when not participating or held out); overrides: what
    the arm changes (None for holdout / not participating).
    """

    experiment: str
    experiment_id: int
    subject_id: str
    participating: bool
    holdout: bool
    variant: str | None
    variant_id: int | None
    overrides: VariantOverrides | None

    @property
    def label(self) -> str:
        """The value logged on impressions: the variant name, "holdout", or "" when not participating."""
        if self.holdout:
            return "holdout"
        return self.variant or ""


def _variant_params_check(variant: Variant) -> list[str]:
    errors = []
    if variant.strategy and variant.strategy not in Widget.Strategy.values:
        errors.append(f"Variant {variant.name!r}: unknown strategy {variant.strategy!r}.")
    params = variant.params or {}
    if not isinstance(params, dict):
        return errors + [f"Variant {variant.name!r}: parameters must be a JSON object."]
    for key in ("epsilon",):
        if key in params:
            value = params[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                errors.append(
                    f"Variant {variant.name!r}: {key} must be a number between 0 and 1, got {value!r}."
                )
    if "num_items" in params:
        value = params["num_items"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
            errors.append(
                f"Variant {variant.name!r}: num_items must be a whole number from 1 to 100, got {value!r}."
            )
    if "alpha" in params:
        value = params["alpha"]
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            errors.append(f"Variant {variant.name!r}: alpha must be a non-negative number, got {value!r}.")
    if not isinstance(variant.rules or [], list):
        errors.append(f"Variant {variant.name!r}: rules must be a JSON list of {{kind, params}} objects.")
    else:
        from recommender.rules import RuleParamsError, rule_params_validate

        for i, rule in enumerate(variant.rules or []):
            if not isinstance(rule, dict) or "kind" not in rule:
                errors.append(f"Variant {variant.name!r}: rule {i + 1} needs a 'kind'.")
                continue
            try:
                rule_params_validate(rule["kind"], rule.get("params") or {})
            except RuleParamsError as exc:
                errors.append(
                    f"Variant {variant.name!r}, rule {i + 1} ({rule['kind']}): {' '.join(exc.messages)}"
                )
            except Exception as exc:  # unknown kind etc.
                errors.append(f"Variant {variant.name!r}, rule {i + 1}: {exc}")
    return errors


def experiment_validate(
    *,
    experiment: Experiment,
    variants: Sequence[Variant] | None = None,
    widget_ids: Sequence[int] | None = None,
) -> None:
    """Raise ValidationError listing every problem that prevents `experiment` from running."""
    variants = list(variants if variants is not None else experiment.variants.all())
    widget_ids = list(
        widget_ids if widget_ids is not None else experiment.widgets.values_list("pk", flat=True)
    )
    errors: list[str] = []
    if len(variants) < 2:
        errors.append(
            f"An experiment needs at least two variants (a control and a treatment); it has {len(variants)}."
        )
    controls = [v for v in variants if v.is_control]
    if len(controls) == 0:
        errors.append("Mark exactly one variant as the control; none is marked.")
    elif len(controls) > 1:
        errors.append(
            f"Exactly one variant may be the control; {len(controls)} are marked "
            f"({', '.join(v.name for v in controls)})."
        )
    for v in variants:
        if v.weight is None or v.weight < 1:
            errors.append(f"Variant {v.name!r} has weight {v.weight}; weights must be whole numbers >= 1.")
        errors.extend(_variant_params_check(v))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        errors.append("Variant names must be unique within the experiment.")
    if not widget_ids:
        errors.append("Choose at least one target widget.")
    else:
        clash = (
            Experiment.objects.filter(status=Experiment.Status.RUNNING, widgets__in=widget_ids)
            .exclude(pk=experiment.pk)
            .values_list("slug", "widgets__slug")
            .distinct()
        )
        for slug, widget_slug in clash:
            errors.append(f"Widget {widget_slug!r} is already in running experiment {slug!r}; stop it first.")
    if not 0 <= experiment.traffic_share <= 1:
        errors.append("Traffic share must be between 0 and 1.")
    elif experiment.traffic_share == 0:
        errors.append("Traffic share is 0: nobody would take part.")
    if not 0 <= experiment.holdout_share <= 0.5:
        errors.append("Holdout share must be between 0 and 0.5.")
    if errors:
        raise ValidationError(errors)


def _bump() -> None:
    """Invalidate serving's snapshots now (this process) and again after commit (other workers could
    have re-read the old rows in between; their memo lives MEMO_SECONDS at most anyway)."""
    experiment_cache_bump()
    transaction.on_commit(experiment_cache_bump)


def _weights(variants: Sequence[Variant]) -> dict[int, float]:
    return {v.pk: float(v.weight) for v in variants}


@transaction.atomic
def experiment_start(*, experiment: Experiment, now: datetime | None = None) -> Experiment:
    """Start (or resume) an experiment after validating it; builds or rebalances the allocation."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status == Experiment.Status.RUNNING:
        raise ValidationError(f"Experiment {experiment.slug!r} is already running.")
    if experiment.status == Experiment.Status.STOPPED:
        raise ValidationError(
            f"Experiment {experiment.slug!r} was stopped; stopped experiments cannot restart. "
            "Duplicate it instead (its results stay as they are)."
        )
    variants = list(experiment.variants.all())
    experiment_validate(experiment=experiment, variants=variants)
    weights = _weights(variants)
    if experiment.allocation:
        experiment.allocation = allocation_rebalance(experiment.allocation, weights)
    else:
        experiment.allocation = allocation_build(weights)
    experiment.status = Experiment.Status.RUNNING
    if experiment.started_at is None:
        experiment.started_at = now or timezone.now()
    experiment.save(update_fields=["allocation", "status", "started_at"])
    _bump()
    return experiment


@transaction.atomic
def experiment_pause(*, experiment: Experiment) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Experiment.Status.RUNNING:
        raise ValidationError(
            f"Only a running experiment can be paused; {experiment.slug!r} is {experiment.status}."
        )
    experiment.status = Experiment.Status.PAUSED
    experiment.save(update_fields=["status"])
    _bump()
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, now: datetime | None = None) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in (Experiment.Status.RUNNING, Experiment.Status.PAUSED):
        raise ValidationError(
            f"Only a running or paused experiment can be stopped; {experiment.slug!r} is {experiment.status}."
        )
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = now or timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    _bump()
    return experiment


@transaction.atomic
def experiment_weights_update(*, experiment: Experiment, weights: Mapping[str, int]) -> Experiment:
    """Change variant weights by name. A running/paused experiment's allocation is rebalanced with the
    fewest bucket moves (shoppers in buckets that do not move keep their variant)."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    variants = {v.name: v for v in experiment.variants.all()}
    unknown = sorted(set(weights) - set(variants))
    if unknown:
        raise ValidationError(
            f"Unknown variant(s) {', '.join(unknown)}; known: {', '.join(sorted(variants))}."
        )
    for name, w in weights.items():
        if not isinstance(w, int) or isinstance(w, bool) or w < 1:
            raise ValidationError(f"Weight of {name!r} must be a whole number >= 1, got {w!r}.")
    for name, w in weights.items():
        variants[name].weight = w
    Variant.objects.bulk_update(list(variants.values()), ["weight"])
    experiment_allocation_sync(experiment=experiment)
    return experiment


def experiment_allocation_sync(*, experiment: Experiment) -> None:
    """After variants were edited: rebalance the allocation of a started experiment to the current
    weights (no-op for drafts, which build theirs on start)."""
    if not experiment.allocation:
        return
    variants = list(Variant.objects.filter(experiment=experiment))
    if not variants:
        return
    weights = _weights(variants)
    new = allocation_rebalance(experiment.allocation, weights)
    if new != experiment.allocation:
        experiment.allocation = new
        Experiment.objects.filter(pk=experiment.pk).update(allocation=new)
    _bump()


def variant_assign(*, experiment: ExperimentSnapshot | Experiment, subject_id: str) -> Assignment:
    """The sticky assignment of `subject_id` (customer external id or visitor id). Pure arithmetic on
    the experiment's salt and allocation: same inputs, same answer, no database access for a snapshot."""
    snap = (
        experiment
        if isinstance(experiment, ExperimentSnapshot)
        else ExperimentSnapshot.from_model(experiment)
    )
    if not subject_id:
        raise ValueError("subject_id must be a non-empty customer or visitor id")
    base = dict(experiment=snap.slug, experiment_id=snap.id, subject_id=subject_id)
    if not in_traffic(snap.salt, subject_id, snap.traffic_share):
        return Assignment(
            **base, participating=False, holdout=False, variant=None, variant_id=None, overrides=None
        )
    if in_holdout(snap.salt, subject_id, snap.holdout_share):
        return Assignment(
            **base, participating=True, holdout=True, variant=None, variant_id=None, overrides=None
        )
    vid = variant_for(snap.salt, subject_id, snap.allocation)
    over = snap.variants.get(vid)
    return Assignment(
        **base,
        participating=True,
        holdout=False,
        variant=over.name if over else None,
        variant_id=vid,
        overrides=over,
    )


def exposures_log(*, assignments: Sequence[Assignment], now: datetime | None = None) -> int:
    """Record first exposures (participating subjects only) in one bulk insert; re-exposures are ignored
    by the unique (experiment, subject) constraint. Returns the number of rows offered."""
    now = now or timezone.now()
    rows = [
        Exposure(
            experiment_id=a.experiment_id,
            variant_id=a.variant_id,
            subject_id=a.subject_id[:64],
            holdout=a.holdout,
            first_exposed_at=now,
        )
        for a in assignments
        if a.participating
    ]
    if rows:
        Exposure.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


EXPOSURE_SEEN_TTL = 24 * 3600


def exposure_note(*, assignment: Assignment, now: datetime | None = None) -> bool:
    """Log the exposure of a served shopper once: a cache marker skips the insert for shoppers already
    logged (the unique constraint makes a repeat harmless when the cache is cold or down)."""
    if not assignment.participating:
        return False
    key = f"rs:exp:seen:{assignment.experiment_id}:{assignment.subject_id}"
    try:
        if not cache.add(key, 1, EXPOSURE_SEEN_TTL):
            return False
    except Exception:
        pass  # cache down: fall through to the idempotent insert
    exposures_log(assignments=[assignment], now=now)
    return True
