"""Admin for training runs and model versions.

Training runs: start one (engine + JSON parameters, validated), watch its progress bar update live
(a JSON status endpoint polled by a few lines of inline JS), read timings, device, data and errors.
Model versions: metrics side by side (a column per metric, and a compare view for selected
versions), promote or roll back in one click (row buttons, change-page buttons, admin actions).
Engine choice: which engine serves the personalized strategy (the winner of the shop's held-out
evaluation at training time), the figures it was chosen on, and a merchandiser's override.
Every view is a thin adapter over recommender.training / recommender.services.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from recommender.engines import REGISTRY, TORCH_ENGINES
from recommender.models import EngineChoice, ModelVersion, TrainingRun
from recommender.services import model_version_active, model_version_promote, model_version_rollback
from recommender.training import (
    METRIC_KEYS,
    engine_choice_override,
    engine_params_validate,
    training_run_create,
    training_run_status,
)

FINISHED = (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED)


def _progress_html(run: TrainingRun, status_url: str) -> str:
    finished = run.status in FINISHED
    return format_html(
        '<div class="rs-progress rs-{}" data-status-url="{}" data-finished="{}" title="{}">'
        '<div class="rs-progress-bar" style="width:{}%"></div>'
        '<span class="rs-progress-text">{}% {}</span></div>',
        run.status,
        status_url,
        "1" if finished else "0",
        run.progress_message,
        run.progress,
        run.progress,
        run.progress_message[:90],
    )


# ------------------------------------------------------------------------------------ training runs


class TrainingRunStartForm(forms.Form):
    engine = forms.ChoiceField(
        choices=[],
        help_text="Torch engines (" + ", ".join(sorted(TORCH_ENGINES)) + ") run on the GPU training queue.",
    )
    params = forms.CharField(
        label="Parameters (JSON)",
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60, "style": "font-family: monospace"}),
        help_text='Engine hyperparameters as a JSON object, e.g. {"l2": 200}. Empty or {} uses the defaults.',
    )
    auto_promote = forms.BooleanField(
        required=False,
        initial=True,
        label="Promote automatically",
        help_text="Serve the new version when it is no worse than the active one on the held-out events.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["engine"].choices = [(name, name) for name in sorted(REGISTRY)]

    def clean_params(self) -> dict:
        raw = (self.cleaned_data.get("params") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"This is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise ValidationError('Parameters must be a JSON object, e.g. {"l2": 200}.')
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        if "engine" in cleaned and "params" in cleaned:
            try:
                cleaned["params"] = engine_params_validate(engine=cleaned["engine"], params=cleaned["params"])
            except ValidationError as exc:
                self.add_error("params", exc)
        return cleaned


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "engine",
        "status",
        "progress_bar",
        "trigger",
        "device",
        "created_at",
        "duration",
        "version_link",
    )
    list_display_links = ("id", "engine")
    list_filter = ("status", "engine", "trigger", "device")
    search_fields = ("engine", "progress_message", "error")
    date_hierarchy = "created_at"
    list_select_related = ("model_version",)
    list_per_page = 50
    change_form_template = "admin/recommender/trainingrun/change_form.html"
    change_list_template = "admin/recommender/trainingrun/change_list.html"
    readonly_fields = (
        "engine",
        "status",
        "progress_bar",
        "progress_message",
        "trigger",
        "auto_promote",
        "device",
        "version_link",
        "params_pretty",
        "evaluation_pretty",
        "data_pretty",
        "timings_pretty",
        "error_pretty",
        "created_at",
        "started_at",
        "finished_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "engine",
                    "status",
                    "progress_bar",
                    "version_link",
                    "trigger",
                    "auto_promote",
                    "device",
                )
            },
        ),
        ("Evaluation", {"fields": ("evaluation_pretty",)}),
        ("Details", {"fields": ("params_pretty", "data_pretty", "timings_pretty", "error_pretty")}),
        ("Times", {"fields": ("created_at", "started_at", "finished_at")}),
    )

    def has_change_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        return False  # runs are written by the pipeline only; the change page is read-only

    def get_urls(self):
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}"
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name=f"{prefix}_start"),
            path("<int:pk>/status/", self.admin_site.admin_view(self.status_view), name=f"{prefix}_status"),
            *super().get_urls(),
        ]

    def _status_url(self, run: TrainingRun) -> str:
        return reverse(f"{self.admin_site.name}:recommender_trainingrun_status", args=[run.pk])

    # ---- columns
    @admin.display(description="Progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return _progress_html(run, self._status_url(run))

    @admin.display(description="Duration")
    def duration(self, run: TrainingRun) -> str:
        if run.started_at and run.finished_at:
            return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
        return "—"

    @admin.display(description="Model version")
    def version_link(self, run: TrainingRun) -> str:
        if run.model_version_id is None:
            return "—"
        version = run.model_version
        url = reverse(f"{self.admin_site.name}:recommender_modelversion_change", args=[version.pk])
        return format_html('<a href="{}">v{} ({})</a>', url, version.pk, version.get_status_display())

    @staticmethod
    def _pre(value: Any) -> str:
        if not value:
            return "—"
        return format_html("<pre style='margin:0;white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))

    @admin.display(description="Parameters")
    def params_pretty(self, run: TrainingRun) -> str:
        return self._pre(run.params) if run.params else "defaults"

    @admin.display(description="Held-out evaluation")
    def evaluation_pretty(self, run: TrainingRun) -> str:
        return self._pre((run.data_snapshot or {}).get("evaluation"))

    @admin.display(description="Data snapshot")
    def data_pretty(self, run: TrainingRun) -> str:
        data = {k: v for k, v in (run.data_snapshot or {}).items() if k != "evaluation"}
        return self._pre(data)

    @admin.display(description="Timings (seconds)")
    def timings_pretty(self, run: TrainingRun) -> str:
        return self._pre(run.timings)

    @admin.display(description="Error")
    def error_pretty(self, run: TrainingRun) -> str:
        if not run.error:
            return "—"
        return format_html("<pre style='margin:0;white-space:pre-wrap;color:#ba2121'>{}</pre>", run.error)

    # ---- views
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        return self.start_view(request)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TrainingRunStartForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    run = training_run_create(
                        engine=form.cleaned_data["engine"],
                        params=form.cleaned_data["params"],
                        trigger=TrainingRun.Trigger.MANUAL,
                        auto_promote=form.cleaned_data["auto_promote"],
                    )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                run.refresh_from_db()
                self.message_user(
                    request, f"Training run #{run.pk} ({run.engine}) started.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse(f"{self.admin_site.name}:recommender_trainingrun_change", args=[run.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Start a training run",
            "form": form,
            "engines_torch": sorted(TORCH_ENGINES),
        }
        return TemplateResponse(request, "admin/recommender/trainingrun/start.html", context)

    def status_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = TrainingRun.objects.filter(pk=pk).select_related("model_version").first()
        if run is None:
            return JsonResponse({"error": f"Training run {pk} does not exist."}, status=404)
        data = training_run_status(run=run)
        if run.model_version_id:
            data["model_version_url"] = reverse(
                f"{self.admin_site.name}:recommender_modelversion_change", args=[run.model_version_id]
            )
        return JsonResponse(data)


# ----------------------------------------------------------------------------------- model versions


def _metric(key: str):
    def column(version: ModelVersion) -> str:
        value = (version.metrics or {}).get(key)
        return f"{value:.4f}" if isinstance(value, int | float) else "—"

    column.short_description = key.upper()
    column.__name__ = "metric_" + key.replace("@", "_at_")
    return column


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display_links = ("version_label",)
    list_filter = ("engine", "status")
    search_fields = ("engine",)
    date_hierarchy = "created_at"
    list_select_related = ("training_run",)
    list_per_page = 50
    actions = ("promote_selected", "rollback_selected", "compare_selected")
    change_form_template = "admin/recommender/modelversion/change_form.html"
    readonly_fields = (
        "engine",
        "status",
        "metrics_table",
        "comparison",
        "params_pretty",
        "data_pretty",
        "artifact",
        "id_maps",
        "run_link",
        "created_at",
        "promoted_at",
    )
    fieldsets = (
        (None, {"fields": ("engine", "status", "run_link", "created_at", "promoted_at")}),
        ("Offline metrics (held-out temporal split)", {"fields": ("metrics_table", "comparison")}),
        ("Details", {"fields": ("params_pretty", "data_pretty", "artifact", "id_maps")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training runs

    def get_list_display(self, request: HttpRequest):
        token = get_token(request)
        can_change = self.has_change_permission(request)

        @admin.display(description="Registry")
        def registry_buttons(version: ModelVersion) -> str:
            if not can_change:
                return ""
            if version.status == ModelVersion.Status.ACTIVE:
                url = reverse(
                    f"{self.admin_site.name}:recommender_modelversion_rollback", args=[version.engine]
                )
                label, title = "Roll back", f"Re-activate the {version.engine} version that was active before"
            else:
                url = reverse(f"{self.admin_site.name}:recommender_modelversion_promote", args=[version.pk])
                label, title = "Promote", f"Serve v{version.pk} for {version.engine}"
            return format_html(
                '<form method="post" action="{}" style="margin:0">'
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<button type="submit" class="button" title="{}">{}</button></form>',
                url,
                token,
                title,
                label,
            )

        choices = {c.strategy: c for c in EngineChoice.objects.all()}
        choice_url = reverse(f"{self.admin_site.name}:recommender_enginechoice_changelist")

        @admin.display(description="Engine choice")
        def chosen_for(version: ModelVersion) -> str:
            if version.status != ModelVersion.Status.ACTIVE:
                return ""
            won = [
                f"{strategy} ({'override' if c.override else 'evaluation winner'})"
                for strategy, c in choices.items()
                if c.effective_engine == version.engine
            ]
            return format_html('<a href="{}">{}</a>', choice_url, ", ".join(won)) if won else ""

        return (
            "version_label",
            "engine",
            "status_label",
            chosen_for,
            registry_buttons,
            *[_metric(k) for k in METRIC_KEYS],
            "events",
            "created_at",
            "promoted_at",
        )

    def get_urls(self):
        site = self.admin_site
        return [
            path("compare/", site.admin_view(self.compare_view), name="recommender_modelversion_compare"),
            path(
                "<int:pk>/promote/",
                site.admin_view(self.promote_view),
                name="recommender_modelversion_promote",
            ),
            path(
                "rollback/<str:engine>/",
                site.admin_view(self.rollback_view),
                name="recommender_modelversion_rollback",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            show_save=False,
            show_save_and_continue=False,
            show_save_and_add_another=False,
            can_registry=self.has_change_permission(request, obj),
        )
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    # ---- columns
    @admin.display(description="Version", ordering="id")
    def version_label(self, version: ModelVersion) -> str:
        return f"v{version.pk}"

    @admin.display(description="Status", ordering="status")
    def status_label(self, version: ModelVersion) -> str:
        colour = {"active": "#2e7d32", "candidate": "#9a6700", "retired": "#777"}[version.status]
        return format_html('<strong style="color:{}">{}</strong>', colour, version.get_status_display())

    @admin.display(description="Events")
    def events(self, version: ModelVersion) -> str:
        n = (version.data_snapshot or {}).get("events")
        return f"{n:,}" if isinstance(n, int) else "—"

    @admin.display(description="Training run")
    def run_link(self, version: ModelVersion) -> str:
        run = getattr(version, "training_run", None)
        if run is None:
            return "—"
        url = reverse(f"{self.admin_site.name}:recommender_trainingrun_change", args=[run.pk])
        return format_html('<a href="{}">Run #{}</a> ({})', url, run.pk, run.get_trigger_display())

    @admin.display(description="Metrics")
    def metrics_table(self, version: ModelVersion) -> str:
        metrics = version.metrics or {}
        if not metrics:
            return "No held-out evaluation (too few events when it was trained)."
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, _fmt(v)) for k, v in metrics.items())
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="Against the active version")
    def comparison(self, version: ModelVersion) -> str:
        evaluation = (version.data_snapshot or {}).get("evaluation") or {}
        baseline = evaluation.get("baseline")
        decision = evaluation.get("decision", "")
        if not baseline:
            return decision or "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((k, _fmt((version.metrics or {}).get(k)), _fmt(baseline.get(k))) for k in METRIC_KEYS),
        )
        return format_html(
            "<table><tr><th></th><th>this version</th><th>active v{} ({})</th></tr>{}</table><p>{}</p>",
            baseline.get("version"),
            baseline.get("method", ""),
            rows,
            decision,
        )

    @admin.display(description="Parameters")
    def params_pretty(self, version: ModelVersion) -> str:
        return format_html("<pre style='margin:0'>{}</pre>", json.dumps(version.params or {}, indent=2))

    @admin.display(description="Data snapshot")
    def data_pretty(self, version: ModelVersion) -> str:
        data = {k: v for k, v in (version.data_snapshot or {}).items() if k != "evaluation"}
        return format_html("<pre style='margin:0'>{}</pre>", json.dumps(data, indent=2))

    # ---- one-click views (POST only)
    def _back(self, request: HttpRequest, default: str) -> HttpResponseRedirect:
        target = request.POST.get("next") or request.META.get("HTTP_REFERER") or default
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = default
        return HttpResponseRedirect(target)

    def _changelist_url(self) -> str:
        return reverse(f"{self.admin_site.name}:recommender_modelversion_changelist")

    def promote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return require_POST(self._promote)(request, pk)

    def _promote(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_object_or_404(ModelVersion, pk=pk)
        if not self.has_change_permission(request, version):
            raise PermissionDenied
        try:
            model_version_promote(version=version)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, f"v{version.pk} now serves {version.engine}.", messages.SUCCESS)
        return self._back(request, self._changelist_url())

    def rollback_view(self, request: HttpRequest, engine: str) -> HttpResponse:
        return require_POST(self._rollback)(request, engine)

    def _rollback(self, request: HttpRequest, engine: str) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if engine not in REGISTRY and not ModelVersion.objects.filter(engine=engine).exists():
            raise Http404(f"Unknown engine {engine!r}")
        try:
            version = model_version_rollback(engine=engine)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, f"Rolled back {engine}: v{version.pk} serves again.", messages.SUCCESS)
        return self._back(request, self._changelist_url())

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        raw = request.GET.get("ids", "")
        try:
            ids = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            ids = []
        versions = list(
            ModelVersion.objects.filter(pk__in=ids).select_related("training_run").order_by("engine", "id")
        )
        if len(versions) < 1:
            self.message_user(
                request,
                "Select one or more versions to compare (ids=1,2,... in the address).",
                messages.WARNING,
            )
            return HttpResponseRedirect(self._changelist_url())
        keys = list(METRIC_KEYS) + sorted(
            {k for v in versions for k in (v.metrics or {}) if k not in METRIC_KEYS}
        )
        rows = []
        for key in keys:
            values = [(v.metrics or {}).get(key) for v in versions]
            numeric = [x for x in values if isinstance(x, int | float)]
            best = max(numeric) if numeric and key != "users" else None
            rows.append(
                {
                    "key": key,
                    "cells": [{"value": _fmt(x), "best": best is not None and x == best} for x in values],
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Compare model versions",
            "versions": versions,
            "rows": rows,
            "params": [json.dumps(v.params or {}, indent=1) for v in versions],
            "can_registry": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/recommender/modelversion/compare.html", context)

    # ---- admin actions
    @admin.action(description="Promote the selected version (one per engine)", permissions=["change"])
    def promote_selected(self, request: HttpRequest, queryset) -> None:
        versions = list(queryset)
        engines = [v.engine for v in versions]
        duplicated = sorted({e for e in engines if engines.count(e) > 1})
        if duplicated:
            self.message_user(
                request,
                f"Select at most one version per engine to promote (several selected for: {', '.join(duplicated)}).",
                messages.ERROR,
            )
            return
        for version in versions:
            try:
                model_version_promote(version=version)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, f"v{version.pk} now serves {version.engine}.", messages.SUCCESS)

    @admin.action(description="Roll back the engines of the selected versions", permissions=["change"])
    def rollback_selected(self, request: HttpRequest, queryset) -> None:
        for engine in sorted(set(queryset.values_list("engine", flat=True))):
            try:
                version = model_version_rollback(engine=engine)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(
                    request, f"Rolled back {engine}: v{version.pk} serves again.", messages.SUCCESS
                )

    @admin.action(description="Compare the selected versions side by side", permissions=["view"])
    def compare_selected(self, request: HttpRequest, queryset) -> HttpResponseRedirect:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(
            f"{reverse(f'{self.admin_site.name}:recommender_modelversion_compare')}?ids={ids}"
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if value is None:
        return "—"
    return str(value)


# ------------------------------------------------------------------------------------- engine choice


class EngineChoiceForm(forms.ModelForm):
    override = forms.ChoiceField(
        required=False,
        label="Serve with",
        help_text="Automatic follows the held-out evaluation at every training run; naming an engine pins "
        "it until you switch back. Only engines with an active model version can serve.",
    )

    class Meta:
        model = EngineChoice
        fields = ("override",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        winner = self.instance.engine or "the default engine"
        servable = [n for n in sorted(REGISTRY) if model_version_active(engine=n) is not None]
        if self.instance.override and self.instance.override not in servable:
            servable.append(self.instance.override)
        self.fields["override"].choices = [("", f"Automatic: the evaluation's winner ({winner})")] + [
            (n, n) for n in servable
        ]

    def clean_override(self) -> str:
        engine = self.cleaned_data.get("override") or ""
        if engine and model_version_active(engine=engine) is None:
            raise ValidationError(f"{engine} has no active model version to serve: train it first.")
        return engine


@admin.register(EngineChoice)
class EngineChoiceAdmin(admin.ModelAdmin):
    form = EngineChoiceForm
    list_display = ("strategy", "serving", "engine", "override", "decision", "decided_at")
    actions = ("follow_evaluation",)
    readonly_fields = (
        "strategy",
        "serving",
        "engine",
        "decision",
        "figures_table",
        "decided_at",
        "override_by",
        "override_at",
    )
    fieldsets = (
        (None, {"fields": ("strategy", "serving", "override")}),
        ("Held-out evaluation", {"fields": ("engine", "decision", "figures_table", "decided_at")}),
        ("Override", {"fields": ("override_by", "override_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from training (engine_choice_decide)

    def has_delete_permission(self, request: HttpRequest, obj: EngineChoice | None = None) -> bool:
        return False

    @admin.display(description="Serving now")
    def serving(self, choice: EngineChoice) -> str:
        if choice.override:
            return format_html(
                "<strong>{}</strong> (override by {})", choice.override, choice.override_by or "?"
            )
        return format_html("<strong>{}</strong> (evaluation)", choice.engine or "default engine")

    @admin.display(description="Figures")
    def figures_table(self, choice: EngineChoice) -> str:
        figures = choice.figures or {}
        if not figures:
            return "No evaluation yet."
        keys = [k for k in METRIC_KEYS if any(k in f for f in figures.values())]
        head = format_html_join("", "<th>{}</th>", ((k.upper(),) for k in keys))
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td>{}<td>{}</td><td>{}</td></tr>",
            (
                (
                    format_html("<strong>{}</strong>", name) if name == choice.engine else name,
                    f"v{f['version']}" if f.get("version") else "—",
                    format_html_join("", "<td>{}</td>", ((_fmt(f.get(k)),) for k in keys)),
                    _fmt(f.get("train_seconds")),
                    f.get("status", "compared"),
                )
                for name, f in figures.items()
            ),
        )
        return format_html(
            '<table class="rs-figures"><thead><tr><th>Engine</th><th>Version</th>{}<th>Training (s)</th>'
            "<th>Status</th></tr></thead><tbody>{}</tbody></table>",
            head,
            rows,
        )

    def save_model(
        self, request: HttpRequest, obj: EngineChoice, form: forms.ModelForm, change: bool
    ) -> None:
        engine_choice_override(
            strategy=obj.strategy,
            engine=form.cleaned_data.get("override") or "",
            user=request.user.get_username(),
        )

    @admin.action(description="Follow the held-out evaluation (clear the override)", permissions=["change"])
    def follow_evaluation(self, request: HttpRequest, queryset) -> None:
        for choice in queryset:
            engine_choice_override(strategy=choice.strategy, engine="", user=request.user.get_username())
            self.message_user(
                request,
                f"{choice.strategy} follows the evaluation again: {choice.engine or 'the default engine'}.",
                messages.SUCCESS,
            )
