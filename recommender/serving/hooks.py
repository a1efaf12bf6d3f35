"""The typed interface through which other apps change serving without `recommender` importing them.

`recommender` never imports `experiments`. Experiments plug in a `ServingHook` from their
`AppConfig.ready()` (`serving_hook_register`); serving calls every registered hook:

- `variant_apply` before anything else: a running experiment may swap in the shopper's variant
  (strategy, engine, model version, params, rules) and tag the impressions (experiment, variant);
- `slate_order` for the bandit strategies: the policy orders a pool of base-strategy candidates and
  returns each position's propensity (logged on the impressions, for off-policy evaluation).

With no hook registered, serving runs every widget as configured and bandit widgets fall back (a warning
in the trace says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from catalog.models import Customer

    from ..models import Widget
    from ..rules import RuleSpec


@dataclass(frozen=True)
class VariantApplied:
    """What a hook made of the request: the widget as this shopper's variant sees it (possibly an unsaved
    copy), the rules overriding the widget's own (None = the widget's own) and the context to log."""

    widget: Widget
    rules: list[RuleSpec] | None
    context: dict[str, Any]


@dataclass(frozen=True)
class Slate:
    """A policy's order of a candidate pool: items best first, each position's propensity."""

    name: str  # engine name logged on impressions, e.g. "bandit:thompson"
    items: tuple[int, ...]
    propensities: tuple[float, ...]


@runtime_checkable
class ServingHook(Protocol):
    def variant_apply(
        self,
        *,
        widget: Widget,
        customer: Customer | None,
        visitor: str | None,
        context: dict[str, Any],
        log: bool,
    ) -> VariantApplied:
        """Never raises: a broken lookup returns the widget, no rules override and the context unchanged."""
        ...

    def slate_order(
        self, *, strategy: str, widget: Widget, pool: list[int], customer: Customer | None
    ) -> Slate | None:
        """Order `pool` (the base strategy's best first) for a bandit `strategy`; None = not this hook's."""
        ...


_hooks: list[ServingHook] = []


def serving_hook_register(hook: ServingHook) -> None:
    """Register `hook` (idempotent: a second hook of the same class replaces the first, so re-running an
    AppConfig.ready() does not apply an experiment twice)."""
    if not isinstance(hook, ServingHook):
        raise TypeError(f"{hook!r} does not implement ServingHook (variant_apply, slate_order)")
    _hooks[:] = [h for h in _hooks if type(h) is not type(hook)] + [hook]


def serving_hook_unregister(hook: ServingHook) -> None:
    _hooks[:] = [h for h in _hooks if h is not hook]


def serving_hooks() -> tuple[ServingHook, ...]:
    return tuple(_hooks)
