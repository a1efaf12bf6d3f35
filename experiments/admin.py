"""Admin for experiments: set-up with variant inlines, the sample-size calculator in the form, lifecycle
buttons (start / pause / stop through experiments.services), the results page (per-variant table,
verdict, SRM and guardrails, cumulative-metric and CI charts as inline SVG) and the off-policy estimate
of bandit exploration rates from logged impressions, shown before an experiment starts.
"""

from __future__ import annotations

import math

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import stats
from .analysis import LABELS, METRICS, experiment_results
from .charts import ci_chart, line_chart
from .models import Experiment, Exposure, Variant
from .selectors import metric_baseline
from .services import experiment_allocation_sync, experiment_pause, experiment_start, experiment_stop

POWER = 0.8


def calculator_text(
    *,
    metric: str,
    mde: float,
    alpha: float,
    arms: int = 2,
    traffic_share: float = 1.0,
    widget_ids: list[int] | None = None,
) -> str:
    """The sample-size / power sentence shown under the experiment form (computed from recent data)."""
    label = LABELS.get(metric, metric)
    base = metric_baseline(metric=metric, widget_ids=widget_ids)
    if base is None:
        return (
            f"No recent data for {label} yet (or the calculator does not cover it): use the calculator "
            "page with your own baseline."
        )
    try:
        if base.kind == "binary":
            n = stats.sample_size_proportions(base.value, mde, alpha=alpha, power=POWER)
            level = f"{base.value:.2%}"
        else:
            n = stats.sample_size_means(base.sd, base.value * mde, alpha=alpha, power=POWER)
            level = f"{base.value:,.2f} (SD {base.sd:,.2f})"
    except ValueError as exc:
        return f"Cannot size this experiment: {exc}."
    per_day = base.per_day * max(traffic_share, 1e-9) / arms
    days = n / per_day if per_day > 0 else math.inf
    two_weeks = int(per_day * 14)
    power_note = ""
    if base.kind == "binary" and two_weeks > 0:
        pw = stats.power_proportions(base.value, mde, two_weeks, alpha=alpha)
        power_note = f" With two weeks of traffic ({two_weeks:,} per arm) the power would be {pw:.0%}."
    when = f"about {days:,.0f} days" if math.isfinite(days) else "an unknown time (no traffic)"
    return (
        f"Baseline {label}: {level} over the last {base.days} days ({base.units:,} {base.unit}). To detect a "
        f"{mde:.1%} relative change at alpha {alpha:g} with {POWER:.0%} power you need {n:,} {base.unit} per arm "
        f"({n * arms:,} in all); at about {per_day:,.0f} per arm per day that is {when}.{power_note}"
    )


class VariantInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        live = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        controls = [f.cleaned_data.get("name") for f in live if f.cleaned_data.get("is_control")]
        if len(controls) > 1:
            raise ValidationError(
                f"Exactly one variant may be the control; {len(controls)} are marked ({', '.join(controls)})."
            )
        if live and not controls:
            raise ValidationError("Mark one variant as the control.")


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantInlineFormSet
    extra = 0
    fields = ("name", "is_control", "weight", "strategy", "engine", "model_version", "params", "rules")


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = (
            "slug",
            "name",
            "hypothesis",
            "widgets",
            "traffic_share",
            "holdout_share",
            "primary_metric",
            "guardrail_metrics",
            "minimum_detectable_effect",
            "alpha",
        )

    def clean_guardrail_metrics(self):
        value = self.cleaned_data.get("guardrail_metrics") or []
        known = {"coverage", "diversity", "popularity_share", "latency", "latency_p95"}
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise ValidationError('Give a JSON list of names, e.g. ["coverage", "diversity"].')
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValidationError(
                f"Unknown guardrail(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        return value


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    inlines = [VariantInline]
    list_display = ("slug", "name", "status", "primary_metric", "traffic_share", "started_at", "results_link")
    list_filter = ("status", "primary_metric")
    search_fields = ("slug", "name", "hypothesis")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("widgets",)
    readonly_fields = ("status", "started_at", "stopped_at", "salt")
    change_form_template = "admin/experiments/experiment/change_form.html"

    @admin.display(description="Results")
    def results_link(self, obj: Experiment) -> str:
        if obj.status == Experiment.Status.DRAFT:
            return "-"
        return format_html(
            '<a href="{}">Results</a>', reverse("admin:experiments_experiment_results", args=[obj.pk])
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "minimum_detectable_effect" in form.base_fields:
            form.base_fields["minimum_detectable_effect"].help_text = calculator_text(
                metric=obj.primary_metric,
                mde=obj.minimum_detectable_effect,
                alpha=obj.alpha,
                arms=max(2, obj.variants.count()),
                traffic_share=obj.traffic_share,
                widget_ids=list(obj.widgets.values_list("pk", flat=True)),
            )
        return form

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.instance.allocation:
            experiment_allocation_sync(experiment=form.instance)

    def get_urls(self):
        site = self.admin_site
        return [
            path(
                "<int:pk>/results/", site.admin_view(self.results_view), name="experiments_experiment_results"
            ),
            path(
                "<int:pk>/lifecycle/<str:action>/",
                site.admin_view(self.lifecycle_view),
                name="experiments_experiment_lifecycle",
            ),
            path(
                "calculator/", site.admin_view(self.calculator_view), name="experiments_experiment_calculator"
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            from .offpolicy import ope_reports

            try:
                reports = ope_reports(widget_ids=list(obj.widgets.values_list("pk", flat=True)))
            except Exception as exc:  # never break the form over an estimate
                reports = []
                extra_context["ope_error"] = f"Off-policy estimate unavailable: {exc}"
            extra_context["ope_reports"] = reports
            extra_context["experiment"] = obj
        return super().change_view(request, object_id, form_url, extra_context)

    def lifecycle_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        exp = get_object_or_404(Experiment, pk=pk)
        back = reverse("admin:experiments_experiment_change", args=[pk])
        if request.method != "POST":
            messages.error(
                request, "Use the buttons on the experiment page (POST) to start, pause or stop it."
            )
            return HttpResponseRedirect(back)
        if not self.has_change_permission(request, exp):
            raise PermissionDenied  # roles: only Merchandisers (and superusers) run experiments
        actions = {"start": experiment_start, "pause": experiment_pause, "stop": experiment_stop}
        fn = actions.get(action)
        if fn is None:
            messages.error(request, f"Unknown action {action!r}; use start, pause or stop.")
            return HttpResponseRedirect(back)
        try:
            exp = fn(experiment=exp)
        except ValidationError as exc:
            for m in exc.messages:
                messages.error(request, m)
        else:
            messages.success(request, f"Experiment {exp.slug!r} is now {exp.get_status_display().lower()}.")
        return HttpResponseRedirect(back)

    def results_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        exp = get_object_or_404(Experiment.objects.prefetch_related("variants", "widgets"), pk=pk)
        if not self.has_view_permission(request, exp):
            raise PermissionDenied
        res = experiment_results(experiment=exp)
        rows = []
        for metric in METRICS:
            per = res.stats.get(metric, {})
            for name in res.variants:
                s = per.get(name)
                if s is None:
                    continue
                c = res.comparison(metric, name)
                rows.append(
                    {
                        "metric": LABELS[metric],
                        "variant": name,
                        "is_control": name == res.control,
                        "n": s.n,
                        "value": _value(metric, s.value),
                        "c": c,
                        "effect": _pct(c.relative) if c else "",
                        "ci": f"[{_pct(c.rel_ci[0])}, {_pct(c.rel_ci[1])}]" if c else "",
                        "p": _p(c.p_value) if c else "",
                        "p_holm": _p(c.p_holm) if c else "",
                        "p_bh": _p(c.p_bh) if c else "",
                        "prob": f"{c.prob_beat_control:.1%}" if c else "",
                    }
                )
        ci_rows = [
            (f"{c.variant}: {LABELS[c.metric]}", c.relative, c.rel_ci[0], c.rel_ci[1], c.significant)
            for c in res.comparisons
            if c.control_value
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Results: {exp.name}",
            "experiment": exp,
            "res": res,
            "rows": rows,
            # the daily series is CTR (primary metric CTR) or conversion (otherwise): a rate either way
            "line_svg": mark_safe(line_chart(res.daily, title="Cumulative metric per variant")),
            "daily_metric": LABELS["ctr"] if exp.primary_metric == "ctr" else LABELS["conversion_rate"],
            "ci_svg": mark_safe(ci_chart(ci_rows)),
        }
        return TemplateResponse(request, "admin/experiments/experiment/results.html", context)

    def calculator_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = CalculatorForm(request.GET or None)
        result = None
        if form.is_valid():
            d = form.cleaned_data
            try:
                n = stats.sample_size_proportions(d["baseline"], d["mde"], alpha=d["alpha"], power=d["power"])
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                result = {
                    "n": n,
                    "total": n * d["arms"],
                    "days": (n * d["arms"] / d["daily"]) if d.get("daily") else None,
                }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Sample size and power calculator",
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/experiments/experiment/calculator.html", context)


class CalculatorForm(forms.Form):
    baseline = forms.FloatField(
        min_value=0.0001, max_value=0.9999, help_text="Current rate, e.g. 0.045 for 4.5%."
    )
    mde = forms.FloatField(
        label="Minimum detectable effect",
        min_value=0.001,
        max_value=10,
        help_text="Relative change to detect, e.g. 0.05 for +5%.",
    )
    alpha = forms.FloatField(initial=0.05, min_value=0.0001, max_value=0.5)
    power = forms.FloatField(initial=0.8, min_value=0.5, max_value=0.99)
    arms = forms.IntegerField(initial=2, min_value=2, max_value=20)
    daily = forms.IntegerField(
        label="Shoppers per day",
        required=False,
        min_value=1,
        help_text="Optional: how many enter the experiment per day.",
    )


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.1f}%"


def _p(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else (f"{x:.3g}" if x >= 1e-4 else "<0.0001")


def _value(metric: str, v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    if metric in ("ctr", "add_to_cart_rate", "conversion_rate", "return_rate_14d"):
        return f"{v:.2%}"
    if metric in ("session_duration", "dwell"):
        return f"{v:,.1f} s"
    return f"${v:,.2f}"


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    list_display = ("subject_id", "experiment", "variant", "holdout", "first_exposed_at")
    list_filter = ("experiment", "holdout")
    search_fields = ("subject_id",)
    list_select_related = ("experiment", "variant")
    readonly_fields = ("experiment", "variant", "subject_id", "holdout", "first_exposed_at")

    def has_add_permission(self, request) -> bool:
        return False
