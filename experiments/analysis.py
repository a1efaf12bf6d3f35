"""Experiment results: ORM -> per-variant sufficient statistics -> experiments.stats -> a results dataclass.

Who counts (intent to treat): every subject (customer external id or visitor id) with an `Exposure` row;
their behaviour since `experiment.started_at` (until `stopped_at`) is attributed to the variant they were
assigned, whether or not each session showed the widget. Holdout subjects are reported as their own row
but not compared.

Metric definitions (unit in brackets; "binary" metrics use the two-proportion z-test and a Beta-Binomial
probability to beat control, "mean" metrics Welch's t-test and the normal approximation):

    ctr                 [recommendation list]  lists (one serving request) with >= 1 click / lists shown
    add_to_cart_rate    [session]  sessions with an add_to_cart / sessions
    conversion_rate     [session]  sessions with a purchase / sessions
    aov                 [purchasing session]  purchase value per session that bought (mean)
    revenue_per_visitor [subject]  purchase value per exposed subject, zeros included (mean)
    session_duration    [session]  seconds from a session's first to its last event (mean)
    dwell               [session with dwell events]  mean product-page dwell seconds (mean)
    return_rate_14d     [subject whose first session is >= 14 days before the data ends]  came back in a
                        later session within 14 days of the first one

Guardrails per variant (compared with the control): catalogue coverage (distinct products shown /
active products), diversity (mean distinct categories per list / list length), popularity share (share
of impressions on the 10% most-viewed products of the 30 days before the start). Latency is not logged
per impression, so it is reported as not measured.

Queries: exposures (1), the list/impression family (3), the session family (1), guardrails (3), the
active product count (1) - a fixed number, independent of the number of variants or subjects.

Multiple comparisons: Holm (family-wise) and Benjamini-Hochberg (FDR) adjusted p-values across every
(metric, treatment variant) pair; "significant" uses Holm at the experiment's alpha. Relative effects and
their intervals divide the absolute effect and its interval by the control's level (the control's own
noise is ignored there; the p-value does not depend on it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Case, Count, F, IntegerField, Max, Min, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from catalog.models import Event, Product
from recommender.models import Impression

from . import stats
from .models import Experiment, Exposure

BINARY_METRICS = ("ctr", "add_to_cart_rate", "conversion_rate", "return_rate_14d")
MEAN_METRICS = ("aov", "revenue_per_visitor", "session_duration", "dwell")
METRICS = (
    "ctr",
    "add_to_cart_rate",
    "conversion_rate",
    "aov",
    "revenue_per_visitor",
    "session_duration",
    "dwell",
    "return_rate_14d",
)
LABELS = {
    "ctr": "CTR",
    "add_to_cart_rate": "add-to-cart rate",
    "conversion_rate": "conversion",
    "aov": "AOV",
    "revenue_per_visitor": "revenue per visitor",
    "session_duration": "session duration",
    "dwell": "dwell time",
    "return_rate_14d": "14-day return rate",
}
GUARDRAIL_LIMITS = {  # relative change vs control that fails the guardrail
    "coverage": ("drop", 0.20),
    "diversity": ("drop", 0.10),
    "popularity_share": ("rise", 0.20),
}


@dataclass(frozen=True)
class MetricStats:
    """Sufficient statistics of one metric in one variant. value: rate (binary) or mean."""

    metric: str
    variant: str
    kind: str  # "binary" | "mean"
    n: int
    value: float
    sd: float = math.nan
    successes: int = 0


@dataclass(frozen=True)
class Comparison:
    metric: str
    variant: str
    control_value: float
    value: float
    effect: float  # absolute, variant - control
    relative: float  # effect / control level
    ci_low: float  # absolute, (1 - alpha)
    ci_high: float
    p_value: float
    p_holm: float
    p_bh: float
    prob_beat_control: float
    significant: bool

    @property
    def rel_ci(self) -> tuple[float, float]:
        if not self.control_value:
            return (math.nan, math.nan)
        return (self.ci_low / self.control_value, self.ci_high / self.control_value)


@dataclass(frozen=True)
class Guardrail:
    name: str
    values: dict[str, float]
    status: dict[str, str]  # variant -> "ok" | "fail" | "n/a"
    note: str = ""


@dataclass(frozen=True)
class ExperimentResults:
    experiment: str
    primary_metric: str
    alpha: float
    control: str | None
    variants: tuple[str, ...]
    exposures: dict[str, int]
    stats: dict[str, dict[str, MetricStats]]  # metric -> variant -> stats
    comparisons: tuple[Comparison, ...]
    srm: stats.SrmResult | None
    guardrails: tuple[Guardrail, ...]
    verdict: str
    daily: dict[str, list[tuple[date, float]]] = field(default_factory=dict)  # cumulative primary metric
    warnings: tuple[str, ...] = ()
    sequential: dict[str, stats.SequentialResult] = field(
        default_factory=dict
    )  # variant -> mSPRT on the series

    def comparison(self, metric: str, variant: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.metric == metric and c.variant == variant), None)


class _Acc:
    """Running n / sum / sum of squares (sufficient statistics of a mean)."""

    __slots__ = ("n", "s", "ss")

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.s += x
        self.ss += x * x

    def mean(self) -> float:
        return self.s / self.n if self.n else math.nan

    def sd(self) -> float:
        if self.n < 2:
            return math.nan
        var = (self.ss - self.s * self.s / self.n) / (self.n - 1)
        return math.sqrt(max(var, 0.0))


def _window(experiment: Experiment) -> Q:
    q = Q()
    if experiment.started_at:
        q &= Q(timestamp__gte=experiment.started_at)
    if experiment.stopped_at:
        q &= Q(timestamp__lte=experiment.stopped_at)
    return q


def experiment_results(*, experiment: Experiment, bootstrap: bool = False) -> ExperimentResults:
    """Compute the results of `experiment` (see the module docstring for definitions)."""
    variants = list(experiment.variants.all())
    names = tuple(v.name for v in variants)
    control = next((v.name for v in variants if v.is_control), None)
    weights = {v.name: v.weight for v in variants}
    warnings: list[str] = []

    # --- exposures (1 query)
    subject_variant: dict[str, str] = {}
    for subject, vname, holdout in Exposure.objects.filter(experiment=experiment).values_list(
        "subject_id", "variant__name", "holdout"
    ):
        subject_variant[subject] = "holdout" if holdout else (vname or "")
    exposures: dict[str, int] = defaultdict(int)
    for v in subject_variant.values():
        exposures[v] += 1

    st: dict[str, dict[str, MetricStats]] = {m: {} for m in METRICS}

    # --- lists and clicks (CTR family)
    imps = Impression.objects.filter(experiment=experiment.slug)
    list_rows = imps.values("variant").annotate(
        lists=Count("request_id", distinct=True),
        items=Count("id"),
        products=Count("product_id", distinct=True),
    )
    lists = {r["variant"]: r for r in list_rows}
    click_rows = (
        Event.objects.filter(type="click", impression_id__in=Subquery(imps.values("id")))
        .annotate(
            v=Subquery(Impression.objects.filter(pk=OuterRef("impression_id")).values("variant")[:1]),
            req=Subquery(Impression.objects.filter(pk=OuterRef("impression_id")).values("request_id")[:1]),
        )
        .values("v")
        .annotate(clicks=Count("id"), lists_clicked=Count("req", distinct=True))
    )
    clicked = {r["v"]: r for r in click_rows}
    for name in names + ("holdout",):
        n = lists.get(name, {}).get("lists", 0)
        k = clicked.get(name, {}).get("lists_clicked", 0)
        if n or name != "holdout":
            st["ctr"][name] = MetricStats(
                "ctr", name, "binary", n, k / n if n else math.nan, successes=min(k, n)
            )

    # --- sessions (1 query): per session first/last event, purchases, revenue, carts, dwell
    window = _window(experiment)
    sessions = (
        Event.objects.filter(window, ~Q(session_id=""))
        .values("session_id")
        .annotate(
            cust=Max("customer__external_id"),
            vis=Max("visitor_id"),
            start=Min("timestamp"),
            end=Max("timestamp"),
            buys=Sum(
                Case(When(type="purchase", then=Value(1)), default=Value(0), output_field=IntegerField())
            ),
            revenue=Sum(Case(When(type="purchase", then=F("value")), default=None)),
            carts=Sum(
                Case(When(type="add_to_cart", then=Value(1)), default=Value(0), output_field=IntegerField())
            ),
            dwell_sum=Sum("dwell_ms"),
            dwell_n=Count("dwell_ms"),
        )
    )
    conv = defaultdict(_Acc)
    cart = defaultdict(_Acc)
    aov = defaultdict(_Acc)
    dur = defaultdict(_Acc)
    dwell = defaultdict(_Acc)
    revenue_by_subject: dict[str, float] = defaultdict(float)
    starts_by_subject: dict[str, list[datetime]] = defaultdict(list)
    daily_conv: dict[str, dict[date, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    data_end = None
    for row in sessions.iterator(chunk_size=5000):
        subject = row["cust"] if row["cust"] and row["cust"] in subject_variant else row["vis"]
        v = subject_variant.get(subject)
        if v is None:
            continue
        bought = 1.0 if row["buys"] else 0.0
        conv[v].add(bought)
        cart[v].add(1.0 if row["carts"] else 0.0)
        dur[v].add((row["end"] - row["start"]).total_seconds())
        if bought:
            aov[v].add(float(row["revenue"] or 0))
            revenue_by_subject[subject] += float(row["revenue"] or 0)
        if row["dwell_n"]:
            dwell[v].add(row["dwell_sum"] / row["dwell_n"] / 1000.0)
        starts_by_subject[subject].append(row["start"])
        day = row["start"].date()
        daily_conv[v][day][0] += bought
        daily_conv[v][day][1] += 1
        data_end = row["end"] if data_end is None or row["end"] > data_end else data_end

    rpv = defaultdict(_Acc)
    for subject, v in subject_variant.items():
        rpv[v].add(revenue_by_subject.get(subject, 0.0))
    ret = defaultdict(lambda: [0, 0])
    if data_end is not None:
        horizon = timedelta(days=14)
        for subject, starts in starts_by_subject.items():
            starts.sort()
            if starts[0] + horizon > data_end:
                continue  # not observed for 14 days yet
            came_back = any(starts[0] + timedelta(minutes=30) < s <= starts[0] + horizon for s in starts[1:])
            r = ret[subject_variant[subject]]
            r[0] += came_back
            r[1] += 1

    for name in names + ("holdout",):
        if name == "holdout" and not exposures.get("holdout"):
            continue
        c = conv[name]
        st["conversion_rate"][name] = MetricStats(
            "conversion_rate", name, "binary", c.n, c.mean(), successes=int(round(c.s))
        )
        a = cart[name]
        st["add_to_cart_rate"][name] = MetricStats(
            "add_to_cart_rate", name, "binary", a.n, a.mean(), successes=int(round(a.s))
        )
        r = ret[name]
        st["return_rate_14d"][name] = MetricStats(
            "return_rate_14d", name, "binary", r[1], r[0] / r[1] if r[1] else math.nan, successes=r[0]
        )
        for metric, acc in (
            ("aov", aov),
            ("revenue_per_visitor", rpv),
            ("session_duration", dur),
            ("dwell", dwell),
        ):
            x = acc[name]
            st[metric][name] = MetricStats(metric, name, "mean", x.n, x.mean(), x.sd())

    # --- comparisons
    comps: list[dict] = []
    if control is not None:
        for metric in METRICS:
            a = st[metric].get(control)
            for name in names:
                if name == control:
                    continue
                b = st[metric].get(name)
                if a is None or b is None:
                    continue
                comps.append(_compare(metric, a, b, experiment.alpha))
        comps = [c for c in comps if c is not None]
    pv = [c["p_value"] for c in comps]
    holm = stats.holm(pv) if pv else []
    bh = stats.benjamini_hochberg(pv) if pv else []
    comparisons = tuple(
        Comparison(**c, p_holm=float(h), p_bh=float(b), significant=bool(h < experiment.alpha))
        for c, h, b in zip(comps, holm, bh, strict=True)
    )

    # --- SRM on exposures of the variants (holdout excluded)
    srm = None
    if len(names) >= 2 and sum(exposures.get(n, 0) for n in names) > 0:
        srm = stats.srm_check([exposures.get(n, 0) for n in names], [weights[n] for n in names])
        if srm.mismatch:
            warnings.append(
                f"Sample ratio mismatch: exposures {', '.join(f'{n} {exposures.get(n, 0)}' for n in names)} "
                f"do not match the weights {', '.join(f'{n} {weights[n]}' for n in names)} "
                f"(chi-square p = {srm.p_value:.2g}). Assignment or logging is broken; do not trust these results."
            )

    guardrails = _guardrails(experiment, imps, names, control, lists)
    daily, daily_counts = _daily(experiment, imps, names, daily_conv)
    sequential = _sequential(experiment, control, names, daily_counts)
    verdict = _verdict(experiment, control, names, comparisons, srm, guardrails)
    return ExperimentResults(
        experiment=experiment.slug,
        primary_metric=experiment.primary_metric,
        alpha=experiment.alpha,
        control=control,
        variants=names,
        exposures=dict(exposures),
        stats=st,
        comparisons=comparisons,
        srm=srm,
        guardrails=guardrails,
        verdict=verdict,
        daily=daily,
        sequential=sequential,
        warnings=tuple(warnings),
    )


def _compare(metric: str, a: MetricStats, b: MetricStats, alpha: float) -> dict | None:
    if a.kind == "binary":
        if a.n <= 0 or b.n <= 0:
            return None
        t = stats.two_proportion_ztest(a.successes, a.n, b.successes, b.n, alpha=alpha)
        prob = stats.prob_beat_control_binary(a.successes, a.n, b.successes, b.n, draws=20_000)
    else:
        if a.n < 2 or b.n < 2 or math.isnan(a.sd) or math.isnan(b.sd):
            return None
        t = stats.welch_ttest_from_stats(a.value, a.sd, a.n, b.value, b.sd, b.n, alpha=alpha)
        prob = stats.prob_beat_control_mean(a.value, a.sd, a.n, b.value, b.sd, b.n)
    rel = t.effect / a.value if a.value else math.nan
    return dict(
        metric=metric,
        variant=b.variant,
        control_value=a.value,
        value=b.value,
        effect=t.effect,
        relative=rel,
        ci_low=t.ci_low,
        ci_high=t.ci_high,
        p_value=float(t.p_value),
        prob_beat_control=prob,
    )


def _guardrails(experiment: Experiment, imps, names, control, lists) -> tuple[Guardrail, ...]:
    active = Product.objects.filter(is_active=True).count() or 1
    coverage = {n: lists.get(n, {}).get("products", 0) / active for n in names}
    div_acc: dict[str, _Acc] = defaultdict(_Acc)
    for r in imps.values("variant", "request_id").annotate(
        n=Count("id"), cats=Count("product__category_id", distinct=True)
    ):
        div_acc[r["variant"]].add(r["cats"] / r["n"] if r["n"] else 0.0)
    diversity = {n: div_acc[n].mean() if div_acc[n].n else math.nan for n in names}
    start = experiment.started_at or timezone.now()
    top_n = max(1, active // 10)
    top = list(
        Event.objects.filter(
            type="view", timestamp__gte=start - timedelta(days=30), timestamp__lt=start, product__isnull=False
        )
        .values("product_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("product_id", flat=True)[:top_n]
    )
    pop_rows = imps.filter(product_id__in=top).values("variant").annotate(n=Count("id")) if top else []
    pop_counts = {r["variant"]: r["n"] for r in pop_rows}
    popularity = {
        n: (pop_counts.get(n, 0) / lists[n]["items"]) if lists.get(n, {}).get("items") else math.nan
        for n in names
    }
    out = []
    for name, values in (("coverage", coverage), ("diversity", diversity), ("popularity_share", popularity)):
        direction, limit = GUARDRAIL_LIMITS[name]
        status = {}
        base = values.get(control) if control else None
        for n in names:
            if n == control or base is None or math.isnan(base) or math.isnan(values[n]) or base == 0:
                status[n] = "n/a" if n != control else "control"
                continue
            change = values[n] / base - 1
            bad = change < -limit if direction == "drop" else change > limit
            status[n] = "fail" if bad else "ok"
        note = f"fails when it {'drops' if direction == 'drop' else 'rises'} more than {limit:.0%} vs control"
        out.append(Guardrail(name, values, status, note))
    out.append(
        Guardrail("latency", {}, {n: "n/a" for n in names}, "not measured: serving does not log latency")
    )
    return tuple(out)


def _daily(experiment, imps, names, daily_conv) -> tuple[dict, dict]:
    """Cumulative primary metric per variant per day (CTR from lists by day; session metrics use
    conversion as the series when the primary metric is not CTR), and the cumulative (successes, n)
    behind each point (for the sequential test)."""
    out: dict[str, list[tuple[date, float]]] = {}
    counts: dict[str, dict[date, tuple[float, float]]] = {}
    if experiment.primary_metric == "ctr":
        shown = defaultdict(dict)
        for r in (
            imps.annotate(d=TruncDate("created_at"))
            .values("variant", "d")
            .annotate(n=Count("request_id", distinct=True))
        ):
            shown[r["variant"]][r["d"]] = r["n"]
        clicks = defaultdict(dict)
        for r in (
            Event.objects.filter(type="click", impression_id__in=Subquery(imps.values("id")))
            .annotate(
                v=Subquery(Impression.objects.filter(pk=OuterRef("impression_id")).values("variant")[:1]),
                d=TruncDate("timestamp"),
            )
            .values("v", "d")
            .annotate(n=Count("id"))
        ):
            clicks[r["v"]][r["d"]] = r["n"]
        for n in names:
            days = sorted(set(shown[n]) | set(clicks[n]))
            cs = cl = 0
            series = []
            counts[n] = {}
            for d in days:
                cs += shown[n].get(d, 0)
                cl += clicks[n].get(d, 0)
                if cs:
                    series.append((d, cl / cs))
                    counts[n][d] = (min(cl, cs), cs)
            out[n] = series
        return out, counts
    for n in names:
        s = b = 0.0
        series = []
        counts[n] = {}
        for d in sorted(daily_conv[n]):
            b += daily_conv[n][d][0]
            s += daily_conv[n][d][1]
            series.append((d, b / s if s else 0.0))
            counts[n][d] = (b, s)
        out[n] = series
    return out, counts


def _sequential(experiment, control, names, counts) -> dict[str, stats.SequentialResult]:
    """mSPRT (experiments.stats.msprt_normal) on the daily looks at the series' rate: an always-valid
    p-value, so checking the results page every day does not inflate false positives. The mixing
    variance tau^2 is (MDE x control rate)^2."""
    out: dict[str, stats.SequentialResult] = {}
    if control is None or control not in counts:
        return out
    for name in names:
        if name == control or name not in counts:
            continue
        days = sorted(set(counts[control]) | set(counts[name]))
        a_last = b_last = None
        diffs, variances = [], []
        for d in days:
            a_last = counts[control].get(d, a_last)
            b_last = counts[name].get(d, b_last)
            if a_last is None or b_last is None or a_last[1] < 2 or b_last[1] < 2:
                continue
            pa, pb = a_last[0] / a_last[1], b_last[0] / b_last[1]
            v = pa * (1 - pa) / a_last[1] + pb * (1 - pb) / b_last[1]
            if v > 0:
                diffs.append(pb - pa)
                variances.append(v)
        if not diffs:
            continue
        base = counts[control][max(counts[control])]
        rate = base[0] / base[1] if base[1] else 0.0
        tau2 = max((experiment.minimum_detectable_effect * rate) ** 2, 1e-8)
        out[name] = stats.msprt_normal(diffs, variances, tau2=tau2, alpha=experiment.alpha)
    return out


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x * 100:+.1f}%"


def _verdict(experiment, control, names, comparisons, srm, guardrails) -> str:
    if control is None:
        return "No control variant: nothing to compare against."
    parts = []
    if srm is not None and srm.mismatch:
        parts.append("SAMPLE RATIO MISMATCH - results are not trustworthy.")
    primary = experiment.primary_metric
    for name in names:
        if name == control:
            continue
        mine = [c for c in comparisons if c.variant == name]
        if not mine:
            parts.append(f"{name}: not enough data yet.")
            continue
        phrases = []
        p = next((c for c in mine if c.metric == primary), None)
        ordered = ([p] if p else []) + [c for c in mine if c is not p]
        wins, losses, flat = [], [], []
        for c in ordered:
            lo, hi = c.rel_ci
            desc = f"{LABELS[c.metric]}, {_pct(c.relative)} [{_pct(lo)}, {_pct(hi)}]"
            if c.significant and c.effect > 0:
                wins.append(desc)
            elif c.significant and c.effect < 0:
                losses.append(desc)
            elif c.metric in (primary, "conversion_rate", "ctr"):
                flat.append(LABELS[c.metric])
        if wins:
            phrases.append(f"{name} wins on " + "; ".join(wins))
        if losses:
            phrases.append(("loses on " if wins else f"{name} loses on ") + "; ".join(losses))
        if not wins and not losses:
            lo, hi = p.rel_ci if p else (math.nan, math.nan)
            phrases.append(
                f"{name}: no significant difference on {LABELS[primary]}"
                + (f" ({_pct(p.relative)} [{_pct(lo)}, {_pct(hi)}])" if p else "")
            )
            flat = [f for f in flat if f != LABELS[primary]]
        if flat:
            phrases.append(", ".join(dict.fromkeys(flat)) + " flat")
        failed = [g.name for g in guardrails if g.status.get(name) == "fail"]
        if failed:
            phrases.append("guardrail breached: " + ", ".join(failed))
        parts.append(", ".join(phrases) + ".")
    return " ".join(parts)
