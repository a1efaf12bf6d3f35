"""Admin for widgets, their rules, live preview, impressions and attribution.

* Widget change page: fields validated for merchandisers (engine exists, pinned version fits), rules as
  inlines whose JSON parameters are validated per kind (`WidgetRule.clean` -> `rules.rule_params_validate`)
  with the help for every kind one click away.
* Preview (`<id>/preview/`): pick a customer (external id or #pk) or anonymous, optionally a product and
  session items; shows the items with score, source engine, the rules that touched them, the reason label,
  what the rules removed, and SHAP explanations when the hybrid engine ranked them. Logs no impressions.
* Stats (`<id>/stats/`): impressions, CTR, add-to-cart and conversion rates, attributed revenue per day
  (one aggregate query: `selectors.widget_attribution`).
* Impressions: read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from catalog.models import Customer, Product
from recommender.engines import REGISTRY
from recommender.models import Impression, Widget, WidgetRule
from recommender.rules import HELP
from recommender.selectors import widget_attribution, widget_cache_forget, widget_preview
from recommender.strategies import strategy_engine
from recsite.roles import VIEW_EXPLANATIONS

SUPPORT_CONSOLE_PERMS = (VIEW_EXPLANATIONS, "catalog.view_customer")

RULE_HELP = format_html(
    "<details><summary>Parameters for each rule type</summary><dl>{}</dl></details>",
    format_html_join(
        "",
        "<dt><b>{}</b></dt><dd>{}</dd>",
        ((label, HELP.get(kind, "")) for kind, label in WidgetRule.Kind.choices),
    ),
)


class WidgetRuleForm(forms.ModelForm):
    params = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 48, "placeholder": "{}"}),
        help_text=RULE_HELP,
    )

    class Meta:
        model = WidgetRule
        fields = ["kind", "params", "position", "enabled"]


class WidgetRuleInline(admin.TabularInline):
    model = WidgetRule
    form = WidgetRuleForm
    extra = 0
    fields = ["position", "kind", "params", "enabled"]
    ordering = ["position", "id"]


class WidgetForm(forms.ModelForm):
    class Meta:
        model = Widget
        fields = [
            "slug",
            "title",
            "placement",
            "enabled",
            "strategy",
            "engine",
            "model_version",
            "num_items",
            "fallback_strategy",
            "params",
        ]

    def clean_engine(self) -> str:
        engine = (self.cleaned_data.get("engine") or "").strip()
        if engine and engine not in REGISTRY:
            raise ValidationError(
                f"Unknown engine {engine!r}. Choose one of: {', '.join(sorted(REGISTRY))}, or leave it empty "
                "for the strategy's default."
            )
        return engine

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        strategy, version = data.get("strategy"), data.get("model_version")
        if strategy and version is not None:
            expected = strategy_engine(strategy, override=data.get("engine") or "")
            if expected is None:
                self.add_error(
                    "model_version", f"The {strategy} strategy uses no trained model; leave it empty."
                )
            elif version.engine != expected:
                self.add_error(
                    "model_version",
                    f"Version {version.pk} was trained with {version.engine}, but this widget is served by "
                    f"{expected}. Pick a {expected} version or change the engine.",
                )
            elif not version.artifact:
                self.add_error(
                    "model_version", f"Version {version.pk} has no stored model file; it cannot serve."
                )
        if strategy and strategy == data.get("fallback_strategy") and strategy not in ("trending", "popular"):
            self.add_error(
                "fallback_strategy",
                "The fallback should differ from the strategy (trending or popular work for anyone).",
            )
        return data


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    form = WidgetForm
    inlines = [WidgetRuleInline]
    list_display = ["slug", "title", "placement", "strategy", "engine_shown", "num_items", "enabled", "tools"]
    list_filter = ["placement", "strategy", "enabled"]
    search_fields = ["slug", "title"]
    list_select_related = ["model_version"]
    autocomplete_fields: list[str] = []
    fieldsets = [
        (None, {"fields": ["slug", "title", "placement", "enabled"]}),
        (
            "What it recommends",
            {"fields": ["strategy", "engine", "model_version", "num_items", "fallback_strategy", "params"]},
        ),
    ]

    @admin.display(description="Engine")
    def engine_shown(self, obj: Widget) -> str:
        engine = strategy_engine(obj.strategy, override=obj.engine or "") or "—"
        pinned = f" (pinned v{obj.model_version_id})" if obj.model_version_id else ""
        return f"{engine}{pinned}"

    @admin.display(description="")
    def tools(self, obj: Widget) -> str:
        return format_html(
            '<a href="{}">Preview</a> · <a href="{}">Stats</a>',
            reverse("admin:recommender_widget_preview", args=[obj.pk]),
            reverse("admin:recommender_widget_stats", args=[obj.pk]),
        )

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Serving reads widgets through the cache: make the merchandiser's change visible at once.
        slugs = [form.instance.slug] + ([form.initial["slug"]] if form.initial.get("slug") else [])
        widget_cache_forget(slugs=slugs)

    def delete_model(self, request: HttpRequest, obj: Widget) -> None:
        super().delete_model(request, obj)
        widget_cache_forget(slugs=[obj.slug])

    def get_urls(self):
        own = [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="recommender_widget_preview",
            ),
            path(
                "<int:pk>/stats/",
                self.admin_site.admin_view(self.stats_view),
                name="recommender_widget_stats",
            ),
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        widget = get_object_or_404(Widget, pk=pk)
        if not self.has_view_permission(request, widget):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = PreviewForm(request.GET or None, initial={"k": widget.num_items})
        preview = None
        if form.is_bound and form.is_valid():
            d = form.cleaned_data
            preview = widget_preview(
                widget=widget,
                customer=d["customer"],
                visitor=d["visitor"] or None,
                product=d["product"],
                session_items=d["session_items"],
                k=d["k"],
            )
        elif not form.is_bound:
            preview = widget_preview(widget=widget, k=widget.num_items)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview: {widget.title} ({widget.slug})",
            "widget": widget,
            "form": form,
            "preview": preview,
            "customers": Customer.objects.order_by("-id").values_list("external_id", flat=True)[:50],
        }
        return TemplateResponse(request, "admin/recommender/widget_preview.html", context)

    def stats_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        widget = get_object_or_404(Widget, pk=pk)
        if not self.has_view_permission(request, widget):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        raw = request.GET.get("days", "30")
        days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 365 else 30
        error = "" if raw == str(days) else f"days must be a whole number from 1 to 365; showing {days}."
        stats = widget_attribution(widget=widget, days=days)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Attribution: {widget.title} ({widget.slug})",
            "widget": widget,
            "stats": stats,
            "total": stats.total(),
            "days": days,
            "error": error,
            "choices": (7, 30, 90),
        }
        return TemplateResponse(request, "admin/recommender/widget_stats.html", context)


class PreviewForm(forms.Form):
    customer = forms.CharField(
        required=False,
        help_text="Customer external id, or #pk. Empty: an anonymous shopper.",
        widget=forms.TextInput(attrs={"list": "rs-customers", "autocomplete": "off"}),
    )
    visitor = forms.CharField(required=False, max_length=64, help_text="Anonymous visitor id (optional).")
    product = forms.CharField(required=False, help_text="Product being viewed: id or SKU (optional).")
    session_items = forms.CharField(
        required=False, help_text="Session or cart items: product ids, comma-separated."
    )
    k = forms.IntegerField(min_value=1, max_value=100, required=False)

    def clean_customer(self) -> Customer | None:
        raw = (self.cleaned_data.get("customer") or "").strip()
        if not raw:
            return None
        q = Q(external_id=raw)
        if raw.startswith("#") and raw[1:].isdigit():
            q = Q(pk=int(raw[1:]))
        customer = Customer.objects.filter(q).first()
        if customer is None:
            raise ValidationError(f"No customer {raw!r} (give the external id, or #pk).")
        return customer

    def clean_product(self) -> Product | None:
        raw = (self.cleaned_data.get("product") or "").strip()
        if not raw:
            return None
        q = Q(sku=raw) | (Q(pk=int(raw)) if raw.isdigit() else Q())
        product = Product.objects.filter(q).first()
        if product is None:
            raise ValidationError(f"No product with id or SKU {raw!r}.")
        return product

    def clean_session_items(self) -> tuple[int, ...]:
        raw = (self.cleaned_data.get("session_items") or "").replace(" ", "")
        if not raw:
            return ()
        parts = [p for p in raw.split(",") if p]
        if not all(p.isdigit() for p in parts):
            raise ValidationError("Give product ids separated by commas, e.g. 12,40,7.")
        ids = tuple(int(p) for p in parts)
        missing = sorted(set(ids) - set(Product.objects.filter(pk__in=ids).values_list("pk", flat=True)))
        if missing:
            raise ValidationError(f"No product with id {', '.join(map(str, missing))}.")
        return ids


@admin.register(Impression)
class ImpressionAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "widget",
        "product",
        "customer",
        "visitor_id",
        "position",
        "engine",
        "score",
        "reason",
        "variant",
    ]
    list_filter = ["widget", "engine", "created_at"]
    search_fields = ["=id", "=request_id", "=visitor_id", "customer__external_id"]
    list_select_related = ["widget", "product", "customer"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    ordering = ["-created_at"]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        # staff who may use the support console get a link to the list's explained decision trace
        if request.user.has_perms(SUPPORT_CONSOLE_PERMS):
            return [*self.list_display, "why"]
        return list(self.list_display)

    @admin.display(description="why?")
    def why(self, obj: Impression) -> str:
        return format_html('<a href="{}">explain</a>', reverse("support:trace", args=[obj.request_id]))

    def get_readonly_fields(self, request: HttpRequest, obj: Impression | None = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Impression | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Impression | None = None) -> bool:
        return False
