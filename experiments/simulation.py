"""The live A/B simulation: simulated shoppers go through the storefront's own code paths.

`simulation_run(...)` plays a scenario (or a copy of an existing experiment) in a THROW-AWAY database:
`sandbox()` points Django's default database at a fresh SQLite file in a temporary directory (migrated
once), the cache at a private local-memory cache, and media / model artifacts at that directory, so a
simulation never touches the demo shop's database, Redis keys or model files; everything is deleted
afterwards (`keep=True` keeps the directory and says where).

One run:
1. `demo_data_seed` builds the shop (catalog, customers, `history_days` of traditional-arm history ending
   where the experiment starts) - the same generator the demo uses. All simulated customers consent to
   personalization (the study's shoppers all have demographics on file).
2. The engines the arms need are trained with the training pipeline (`training_run_execute`).
3. Three widgets (home, product page, cart; 8 slots each, like the shopper model) and one Experiment with
   the scenario's arms as variants are created and started with `experiment_start`.
4. `steps` hourly time steps of visits (Poisson per customer, `sessions_schedule`) are played by the
   pure shopper model; wherever a page shows a widget the model calls `recommendations_get` (the
   storefront's serving path: the experiment hook assigns the variant, applies its overrides, logs the
   exposure and tagged impressions, bandits log propensities) and after each visit its events go
   through `events_record` (clicks carry the impression id), so bandits learn from real click logs.
5. Per-arm observations come from the simulated visits (ground truth, the calibration's definitions);
   `experiments.analysis` is also run on the database as a cross-check of the storefront's analytics.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management import call_command
from django.db import connections
from django.test.utils import override_settings
from django.utils import timezone

from .simulator.ab import ArmObservations, arm_summary, arms_test

TRADITIONAL = {"strategy": "segment_popular", "params": {}}


@dataclass(frozen=True)
class ArmSpec:
    name: str
    is_control: bool = False
    weight: int = 1
    strategy: str = ""
    engine: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    rules: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    arms: tuple[ArmSpec, ...]
    widget_strategy: str = "segment_popular"
    engines: tuple[str, ...] = ("pop",)
    control: str = ""
    treatment: str = ""
    sensitivity: dict[str, float] = field(default_factory=dict)  # arm -> exploration rate (Table 3)
    primary_metric: str = "conversion_rate"


def scenario_get(name: str, *, epsilon: float = 0.1) -> Scenario:
    """The named scenario (ValueError listing the known names for anything else)."""
    if name == "aa":
        return Scenario(
            name="aa",
            description="A/A test: both arms show segment-popular recommendations (the traditional arm).",
            arms=(ArmSpec("A", True, 1), ArmSpec("B", False, 1)),
            control="A",
            treatment="B",
        )
    if name == "paper-2025":
        eps = [epsilon] + [e for e in (0.1, 0.2, 0.3) if abs(e - epsilon) > 1e-9]
        arms = [ArmSpec("traditional", True, 1)]
        names = {}
        for i, e in enumerate(eps):
            arm = "ai-driven" if i == 0 else f"ai-eps-{e:g}"
            names[arm] = e
            arms.append(
                ArmSpec(
                    arm,
                    False,
                    1,
                    strategy="epsilon_greedy",
                    params={"epsilon": e, "base": "personalized", "pool": 24},
                )
            )
        return Scenario(
            name="paper-2025",
            description=(
                "Reference study: A 'traditional' = items popular in the shopper's demographic segment, static "
                "prices; B 'ai-driven' = personalized candidates from the trained engine (EASE) re-ranked online "
                f"by an epsilon-greedy bandit (epsilon {epsilon:g}); extra arms with the other exploration rates "
                "feed Table 3. Dynamic pricing is not part of this code base yet, so prices are static in both."
            ),
            arms=tuple(arms),
            engines=("pop", "ease"),
            control="traditional",
            treatment="ai-driven",
            sensitivity=names,
        )
    raise ValueError(f"Unknown scenario {name!r}; known scenarios: aa, paper-2025.")


# ------------------------------------------------------------------------------------------ sandbox


@contextmanager
def sandbox(*, keep: bool = False, say: Callable[[str], None] = lambda s: None) -> Iterator[Path]:
    """Run the body against a fresh, migrated SQLite file and a private cache (see the module docstring)."""
    from django.core.cache import caches

    from experiments import bandit_serving, selectors
    from recommender.serving import serving_state_reset

    tmp = Path(tempfile.mkdtemp(prefix="recsite-simulate-"))
    db_path = tmp / "simulation.sqlite3"
    new_db = connections.configure_settings(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db_path),
                "OPTIONS": {
                    "timeout": 20,
                    "init_command": "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;",
                },
            }
        }
    )["default"]
    new_db["TEST"] = {"NAME": str(db_path)}
    # Keep the current connection object (not just its settings) and put it back afterwards: an in-memory
    # SQLite database (the test suite's) lives only as long as its connection.
    saved_conn = connections["default"]
    saved_cache_obj = caches["default"]
    saved_db = connections.settings["default"]
    saved_cache = caches.settings["default"]
    connections.settings["default"] = new_db
    _drop(connections, "default")
    caches.settings["default"] = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": f"recsite-simulate-{tmp.name}",
    }
    _drop(caches, "default")
    overrides = override_settings(
        MEDIA_ROOT=str(tmp / "media"),
        RECSITE_ARTIFACT_DIR=tmp / "media" / "models",
        # bandits sync when the runner says a visit's clicks are in (bandit_states_expire), not per request
        RECSITE_BANDIT_SYNC_SECONDS=1e9,
        RECSITE_IMPRESSIONS_ASYNC=False,
        RECSITE_TRAINING_IN_THREAD=False,
        CELERY_TASK_ALWAYS_EAGER=True,
    )
    overrides.enable()
    serving_state_reset()
    selectors.experiments_memo_clear()
    bandit_serving.bandit_state_reset()
    try:
        say(f"Throw-away database: {db_path} (SQLite; the shop's own database is not touched)")
        call_command("migrate", verbosity=0, interactive=False)
        yield tmp
    finally:
        overrides.disable()
        connections["default"].close()
        connections.settings["default"] = saved_db
        connections["default"] = saved_conn
        caches.settings["default"] = saved_cache
        caches["default"] = saved_cache_obj
        serving_state_reset()
        selectors.experiments_memo_clear()
        bandit_serving.bandit_state_reset()
        if keep:
            say(f"Kept the simulation database at {db_path}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _drop(handler: Any, alias: str) -> None:
    with suppress(AttributeError, KeyError):
        del handler[alias]


# ------------------------------------------------------------------------------------------ one run


@dataclass
class RunOutcome:
    seed: int
    arms: dict[str, ArmObservations]
    per_arm: dict[str, dict[str, float]]
    db: dict[str, Any]
    ope: list[dict[str, Any]]
    sessions: int
    seconds: dict[str, float]


def _reset_data() -> None:
    from catalog.services.seed import demo_data_delete
    from experiments.models import Experiment
    from recommender.models import Impression, ModelVersion, TrainingRun, Widget

    Impression.objects.all().delete()
    Experiment.objects.all().delete()
    TrainingRun.objects.all().delete()
    ModelVersion.objects.all().delete()
    Widget.objects.all().delete()
    demo_data_delete()


def _process_state_reset() -> None:
    """Forget everything cached about the previous run's shop (its ids are reused by the next one)."""
    from django.core.cache import cache

    from experiments import bandit_serving, selectors
    from recommender.serving import serving_state_reset

    cache.clear()  # the sandbox's private local-memory cache
    serving_state_reset()
    selectors.experiments_memo_clear()
    bandit_serving.bandit_state_reset()


def _event_rows(log, *, t0, product_pk, prices, customer_ext, session_id, served) -> list[dict]:
    """The visit's events in the REST field names; recommendation clicks (and the view / add-to-cart that
    follow them) carry the impression id of the slot clicked."""
    clicked_imps = [(i, imp) for i, imp in enumerate(log.impressions) if imp.clicked >= 0]
    rec_clicks = iter(clicked_imps)
    current_imp = None
    rows = []
    for e in log.events:
        row: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": e.type,
            "customer": customer_ext,
            "session_id": session_id,
            "timestamp": t0 + timedelta(seconds=e.t),
            "context": {"device": log.device, "source": e.source or "", "simulated": True},
        }
        if e.item >= 0:
            row["product_id"] = product_pk[e.item]
        if e.type == "click" and e.source == "recommendation":
            i, imp = next(rec_clicks, (None, None))
            current_imp = None
            if imp is not None and i < len(served):
                recs = served[i]
                if 0 <= imp.clicked < len(recs):
                    current_imp = str(recs[imp.clicked].impression_id)
            if current_imp:
                row["impression_id"] = current_imp
            row["context"].update({"placement": e.placement, "position": e.position})
        elif e.source == "recommendation" and e.type in ("view", "add_to_cart") and current_imp:
            row["impression_id"] = current_imp
        if e.type in ("add_to_cart", "remove_from_cart", "purchase"):
            row["quantity"] = e.quantity
            row["price"] = str(prices[e.item])
        if e.type == "dwell":
            row["dwell_ms"] = e.dwell_ms
        if e.type == "search":
            row["query"] = e.query or "search"
        if e.type == "rate":
            row["rating"] = e.rating
        rows.append(row)
    return rows


def run_once(
    *,
    scenario: Scenario,
    customers: int,
    products: int,
    steps: int,
    seed: int,
    history_days: int,
    progress: Callable[[int, str], Any] | None = None,
    say: Callable[[str], None] = lambda s: None,
    source_experiment: dict[str, Any] | None = None,
    on_session: Callable[[str, Any], Any] | None = None,
) -> RunOutcome:
    """One simulated experiment inside the current (sandbox) database; see the module docstring.
    `on_session(arm, log)` (optional) sees every simulated visit's SessionLog, e.g. for paired analyses."""
    from catalog.models import Customer, Product
    from catalog.services.events import events_record
    from experiments.analysis import experiment_results
    from experiments.bandit_serving import bandit_rng_seed, bandit_states_expire
    from experiments.models import Experiment, Variant
    from experiments.offpolicy import ope_reports
    from experiments.seeding import demo_data_seed
    from experiments.selectors import ExperimentSnapshot
    from experiments.services import experiment_start, variant_assign
    from recommender.models import TrainingRun, Widget, WidgetRule
    from recommender.serving import recommendations_get
    from recommender.training import training_run_create, training_run_execute

    from .simulator.catalog import catalog_generate
    from .simulator.shoppers import ShopperModel, ShopperParams, population_generate, sessions_schedule

    timings: dict[str, float] = {}
    t = time.perf_counter()
    _reset_data()
    _process_state_reset()
    bandit_rng_seed(seed=seed)  # the bandit arms' random slates are part of the run's seed too
    exp_days = steps / 24.0
    now = timezone.now().astimezone(UTC)
    exp_start = (now - timedelta(days=exp_days, minutes=10)).replace(microsecond=0)
    result = demo_data_seed(
        customers=customers, products=products, days=history_days, seed=seed, end=exp_start, reset=True
    )
    Customer.objects.update(consent=Customer.Consent.FULL)
    timings["seed"] = time.perf_counter() - t
    say(f"run seed {seed}: {result.message}")

    t = time.perf_counter()
    for engine in scenario.engines:
        run = training_run_create(engine=engine, trigger=TrainingRun.Trigger.COMMAND, enqueue=False)
        run = training_run_execute(run_id=run.pk)
        if run is None or run.status != TrainingRun.Status.SUCCEEDED:
            raise RuntimeError(
                f"training {engine} failed in the simulation: {getattr(run, 'error', '')[:500]}"
            )
    timings["train"] = time.perf_counter() - t

    # widgets and the experiment
    widgets = {}
    for placement, slug in (("home", "sim-home"), ("product", "sim-product"), ("cart", "sim-cart")):
        w = Widget.objects.create(
            slug=slug,
            title=f"Simulated {placement}",
            placement=placement,
            strategy=scenario.widget_strategy,
            fallback_strategy="popular",
            num_items=8,
        )
        if placement == "cart":
            WidgetRule.objects.create(widget=w, kind="exclude_in_cart", params={}, position=0)
        widgets[placement] = w
    src = source_experiment or {}
    exp = Experiment.objects.create(
        slug=src.get("slug", f"sim-{scenario.name}"),
        name=src.get("name", f"Simulation {scenario.name}"),
        hypothesis=src.get("hypothesis", scenario.description),
        primary_metric=src.get("primary_metric", scenario.primary_metric),
        traffic_share=1.0,
        holdout_share=0.0,
        salt=f"sim-{seed}",
    )
    exp.widgets.set(list(widgets.values()))
    for arm in scenario.arms:
        Variant.objects.create(
            experiment=exp,
            name=arm.name,
            is_control=arm.is_control,
            weight=arm.weight,
            strategy=arm.strategy,
            engine=arm.engine,
            params=arm.params,
            rules=list(arm.rules),
        )
    exp = experiment_start(experiment=exp, now=exp_start)
    snap = ExperimentSnapshot.from_model(exp)

    # the shoppers: the seeder's catalog and population (same seed), continuing after the history window
    catalog = catalog_generate(n_products=products, seed=seed, window_days=history_days)
    population = population_generate(catalog=catalog, n_customers=customers, seed=seed)
    model = ShopperModel(catalog, ShopperParams())
    starts, who = sessions_schedule(population=population, days=exp_days, seed=seed + 7919)
    offset = history_days * 86400.0
    hist_start = exp_start - timedelta(days=history_days)
    sku_pk = dict(Product.objects.values_list("sku", "pk"))
    product_pk = [sku_pk[s] for s in catalog.skus]
    product_obj = Product.objects.in_bulk(product_pk)
    products_by_idx = [product_obj[p] for p in product_pk]
    idx_of = {p: i for i, p in enumerate(product_pk)}
    prices = [p.price for p in products_by_idx]
    cust_by_ext = Customer.objects.in_bulk(field_name="external_id")
    cust_objs = [cust_by_ext[f"c{i:06d}"] for i in range(customers)]
    arm_of = [variant_assign(experiment=snap, subject_id=c.external_id).label for c in cust_objs]
    arms = {a.name: ArmObservations() for a in scenario.arms}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))

    served: list = []

    def recommend(ctx) -> list[int]:
        product = products_by_idx[ctx.product] if ctx.product >= 0 else None
        recs = recommendations_get(
            widget=widgets[ctx.placement],
            customer=cust_objs[ctx.customer],
            product=product,
            session_items=[product_pk[i] for i in ctx.history[-10:]],
            k=None,  # the widget's (or the variant's) number of items; the widgets hold 8, as ctx.k
            context={"cart": [product_pk[i] for i in ctx.cart]},
        )
        if recs:
            served.append(recs)
        return [idx_of[r.product_id] for r in recs if r.product_id in idx_of]

    t = time.perf_counter()
    bar = progress(len(starts), f"Simulating {scenario.name} (seed {seed})") if progress else None
    rejected = 0
    try:
        for start, u in zip(starts.tolist(), who.tolist(), strict=True):
            served.clear()
            log = model.session(
                population=population, customer=u, start=offset + start, rng=rng, recommend=recommend
            )
            arms[arm_of[u]].add(log)
            if on_session is not None:
                on_session(arm_of[u], log)
            rows = _event_rows(
                log,
                t0=hist_start,
                product_pk=product_pk,
                prices=prices,
                customer_ext=cust_objs[u].external_id,
                session_id=uuid.uuid4().hex,
                served=served,
            )
            if rows:
                res = events_record(events=rows)
                rejected += res.rejected
            bandit_states_expire()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    timings["simulate"] = time.perf_counter() - t
    if rejected:
        say(f"warning: events_record rejected {rejected} simulated events")

    t = time.perf_counter()
    exp.refresh_from_db()
    res = experiment_results(experiment=exp)
    db = {
        "verdict": res.verdict,
        "exposures": res.exposures,
        "srm_p": res.srm.p_value if res.srm else None,
        "rejected_events": rejected,
        "variants": {
            v: {m: res.stats[m][v].value for m in res.stats if v in res.stats[m]} for v in res.variants
        },
    }
    ope_out = []
    if scenario.sensitivity:
        per_arm_vals = {name: obs.values() for name, obs in arms.items()}
        for arm, e0 in scenario.sensitivity.items():
            others = [e for e in scenario.sensitivity.values() if e != e0]
            for rep in ope_reports(experiment=exp.slug, variant=arm, candidates=tuple(others), days=0):
                actual_arm = next((a for a, e in scenario.sensitivity.items() if e == rep.epsilon), None)
                ope_out.append(
                    {
                        "logged_arm": arm,
                        "logged_epsilon": e0,
                        "candidate_epsilon": rep.epsilon,
                        "logged_item_ctr": rep.current_ctr,
                        "n": rep.n,
                        "ips": rep.ips.value if rep.ips else None,
                        "snips": rep.snips.value if rep.snips else None,
                        "snips_se": rep.snips.se if rep.snips else None,
                        "dr": rep.dr.value if rep.dr else None,
                        "actual_item_ctr": per_arm_vals[actual_arm]["item_ctr"] if actual_arm else None,
                    }
                )
    timings["analysis"] = time.perf_counter() - t
    return RunOutcome(
        seed=seed,
        arms=arms,
        per_arm={name: obs.values() for name, obs in arms.items()},
        db=db,
        ope=ope_out,
        sessions=int(len(starts)),
        seconds=timings,
    )


def report_build(*, scenario: Scenario, outcomes: list[RunOutcome], config: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: arms (pooled mean/sd), tests (Welch, treatment vs control), runs, sensitivity."""
    pooled = {a.name: ArmObservations() for a in scenario.arms}
    for o in outcomes:
        for name, obs in o.arms.items():
            pooled[name].extend(obs)
    arms = {name: arm_summary(pooled[name], [o.per_arm[name] for o in outcomes]) for name in pooled}
    tests = arms_test(pooled[scenario.control], pooled[scenario.treatment])
    report: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "config": config,
        "control": scenario.control,
        "treatment": scenario.treatment,
        "arms": arms,
        "tests": tests,
        "runs": [
            {
                "run": i + 1,
                "seed": o.seed,
                "sessions": o.sessions,
                "arms": o.per_arm,
                "seconds": o.seconds,
                "db_analysis": o.db,
            }
            for i, o in enumerate(outcomes)
        ],
    }
    if scenario.sensitivity:
        report["sensitivity"] = {
            f"{eps:g}": {
                "arm": arm,
                "conversion_rate": arms[arm]["conversion_rate"],
                "aov": arms[arm]["aov"],
                "ctr": arms[arm]["ctr"],
                "vs_control": {
                    m: v
                    for m, v in arms_test(pooled[scenario.control], pooled[arm]).items()
                    if m in ("conversion_rate", "aov")
                },
            }
            for arm, eps in sorted(scenario.sensitivity.items(), key=lambda kv: kv[1])
        }
        report["ope"] = [row for o in outcomes for row in o.ope]
    return _json_clean(report)


def _json_clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def simulation_run(
    *,
    scenario: Scenario,
    customers: int,
    products: int,
    steps: int,
    runs: int,
    seed: int,
    history_days: int = 14,
    progress: Callable[[int, str], Any] | None = None,
    say: Callable[[str], None] = lambda s: None,
    keep: bool = False,
    source_experiment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Play `runs` independent runs (seeds seed, seed+1, ...) in one throw-away database; the report."""
    t0 = time.perf_counter()
    outcomes = []
    with sandbox(keep=keep, say=say) as where:
        for r in range(runs):
            outcomes.append(
                run_once(
                    scenario=scenario,
                    customers=customers,
                    products=products,
                    steps=steps,
                    seed=seed + r,
                    history_days=history_days,
                    progress=progress,
                    say=say,
                    source_experiment=source_experiment,
                )
            )
    config = {
        "customers": customers,
        "products": products,
        "steps": steps,
        "step": "1 hour",
        "experiment_days": steps / 24.0,
        "history_days": history_days,
        "runs": runs,
        "seed": seed,
        "database": "throw-away SQLite file in a temporary directory"
        + (f" ({where})" if keep else ", deleted"),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    return report_build(scenario=scenario, outcomes=outcomes, config=config)
