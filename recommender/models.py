"""Widgets (what merchandisers configure), training runs, the model registry, impressions."""

import uuid
from typing import Any

from django.db import models
from django.db.models import Q

from catalog.models import Brand, Category, Customer, Product


class ModelVersion(models.Model):
    """A trained engine artifact with its offline metrics; at most one `active` version per engine."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    engine = models.CharField(max_length=32, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    artifact = models.FileField(upload_to="models/", max_length=255, blank=True)
    id_maps = models.FileField(
        upload_to="models/",
        max_length=255,
        blank=True,
        help_text="npz beside the artifact: product ids by item index, user keys by user index.",
    )
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Offline metrics on the held-out temporal split."
    )
    data_snapshot = models.JSONField(
        default=dict, blank=True, help_text="Users, items, events used for training."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["engine"], condition=Q(status="active"), name="one_active_version_per_engine"
            )
        ]

    def __str__(self) -> str:
        return f"{self.engine} v{self.pk} ({self.status})"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual (admin)"
        COMMAND = "command", "Command line"
        SCHEDULE = "schedule", "Nightly schedule"
        EVENTS = "events", "New-events threshold"

    engine = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True, default="")
    device = models.CharField(max_length=8, blank=True, default="", help_text="cpu or cuda")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    auto_promote = models.BooleanField(default=True)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    data_snapshot = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(
        default=dict, blank=True, help_text="Seconds per phase: data, fit, evaluate, save."
    )
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="training_progress_max_100")
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} {self.engine} ({self.status})"


class Widget(models.Model):
    class Placement(models.TextChoices):
        HOME = "home", "Home page"
        CATEGORY = "category", "Category page"
        PRODUCT = "product", "Product page"
        CART = "cart", "Cart"
        CHECKOUT = "checkout", "Checkout"
        EMAIL = "email", "Email"
        CHAT = "chat", "Chat assistant"

    class Strategy(models.TextChoices):
        PERSONALIZED = "personalized", "Personalized"
        SIMILAR_ITEMS = "similar_items", "Similar items"
        BOUGHT_TOGETHER = "bought_together", "Frequently bought together"
        TRENDING = "trending", "Trending"
        POPULAR = "popular", "Popular"
        RECENTLY_VIEWED = "recently_viewed", "Recently viewed"
        SESSION_BASED = "session_based", "Session-based"
        SEGMENT_POPULAR = "segment_popular", "Popular in the shopper's segment"
        EPSILON_GREEDY = "epsilon_greedy", "Bandit: epsilon-greedy"
        THOMPSON = "thompson", "Bandit: Thompson sampling"
        LINUCB = "linucb", "Bandit: LinUCB (contextual)"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=120)
    placement = models.CharField(max_length=10, choices=Placement.choices)
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    engine = models.CharField(
        max_length=32, blank=True, default="", help_text="Empty: the strategy's default engine."
    )
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pinned_widgets",
        help_text="Pin a version; empty serves the engine's active version.",
    )
    num_items = models.PositiveSmallIntegerField(default=8)
    fallback_strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.TRENDING)
    params = models.JSONField(
        default=dict, blank=True, help_text="Strategy parameters (e.g. bandit exploration rate)."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(num_items__gte=1) & Q(num_items__lte=100), name="widget_num_items_range"
            )
        ]

    def __str__(self) -> str:
        return self.slug


def rule_references_known(*, kind: str, params: Any) -> dict[str, set]:
    """WidgetRule.clean's lookups: the existing categories / brands / SKUs among those `params` mention (one
    small query each), as the `known_*` keywords of `recommender.rules.rule_params_validate` (pure)."""
    if not isinstance(params, dict):
        return {}

    def ints(key: str) -> list[int]:
        raw = params.get(key)
        return [int(v) for v in raw if str(v).isdigit()] if isinstance(raw, list) else []

    known: dict[str, set] = {}
    if "categories" in params:
        known["known_categories"] = set(
            Category.objects.filter(pk__in=ints("categories")).values_list("pk", flat=True)
        )
    if "brands" in params:
        known["known_brands"] = set(Brand.objects.filter(pk__in=ints("brands")).values_list("pk", flat=True))
    if kind == "pin_skus" and isinstance(params.get("pins"), list):
        skus = [p.get("sku") for p in params["pins"] if isinstance(p, dict) and isinstance(p.get("sku"), str)]
        known["known_skus"] = set(
            Product.objects.filter(sku__in=[s.strip() for s in skus]).values_list("sku", flat=True)
        )
    return known


class WidgetRule(models.Model):
    """One business rule of a widget; applied in `position` order. `params` are validated per kind."""

    class Kind(models.TextChoices):
        IN_STOCK = "in_stock", "In stock only"
        ACTIVE_ONLY = "active_only", "Active products only"
        PRICE_RANGE = "price_range", "Price range"
        INCLUDE_CATEGORIES = "include_categories", "Only these categories"
        EXCLUDE_CATEGORIES = "exclude_categories", "Exclude categories"
        INCLUDE_BRANDS = "include_brands", "Only these brands"
        EXCLUDE_BRANDS = "exclude_brands", "Exclude brands"
        EXCLUDE_PURCHASED = "exclude_purchased", "Exclude items already purchased"
        EXCLUDE_IN_CART = "exclude_in_cart", "Exclude items in the cart"
        BOOST_BRANDS = "boost_brands", "Boost brands"
        BOOST_CATEGORIES = "boost_categories", "Boost categories"
        PIN_SKUS = "pin_skus", "Pin SKUs at positions"
        MAX_PER_BRAND = "max_per_brand", "At most N per brand"
        MAX_PER_CATEGORY = "max_per_category", "At most N per category"
        DIVERSITY = "diversity", "Diversity (MMR)"
        FRESHNESS = "freshness", "Freshness boost"

    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["widget", "position", "id"]

    def __str__(self) -> str:
        return f"{self.widget.slug}: {self.get_kind_display()}"

    def clean(self) -> None:
        """Validate `params` for the rule's kind (messages for merchandisers); stores the cleaned params."""
        from django.core.exceptions import ValidationError

        from .rules import RuleParamsError, rule_params_validate

        try:
            self.params = rule_params_validate(
                self.kind, self.params, **rule_references_known(kind=self.kind, params=self.params)
            )
        except RuleParamsError as exc:
            raise ValidationError({"params": exc.messages}) from None


class Impression(models.Model):
    """One recommended item shown to a shopper; its id travels with clicks and purchases (attribution)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request_id = models.UUIDField(db_index=True)
    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="impressions")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="impressions")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    position = models.PositiveSmallIntegerField()
    score = models.FloatField(null=True, blank=True)
    propensity = models.FloatField(
        null=True, blank=True, help_text="Probability the policy showed this item here."
    )
    engine = models.CharField(max_length=32, blank=True, default="", help_text="Source engine or fallback.")
    reason = models.CharField(max_length=160, blank=True, default="")
    experiment = models.CharField(max_length=64, blank=True, default="", help_text="Experiment slug, if any.")
    variant = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["widget", "created_at"]),
            models.Index(fields=["experiment", "variant"]),
            models.Index(fields=["customer", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"Impression {self.id} (widget {self.widget_id}, product {self.product_id}, position {self.position})"


class DecisionTraceRecord(models.Model):
    """The decision trace of one served list (`recommender.serving.trace.DecisionTrace.to_json()`), written in
    the same bulk write as the list's impressions. Attributions are not stored: they are recomputed from the
    trace's model versions and shopper history (`recommender.explain`). Rows older than
    RECSITE_TRACE_RETENTION_DAYS are deleted by a periodic task (recommender.tasks)."""

    request_id = models.UUIDField(unique=True)
    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="decision_traces")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    trace = models.JSONField()

    class Meta:
        indexes = [
            models.Index(fields=["customer", "created_at"]),
            models.Index(fields=["visitor_id", "created_at"]),
            models.Index(fields=["widget", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"Decision trace {self.request_id} (widget {self.widget_id})"


class EngineChoice(models.Model):
    """Which engine serves a strategy (today: "personalized"): the winner of the shop's own held-out
    evaluation at training time, unless a merchandiser overrides it. `figures` keeps the comparison
    (per engine: model version, metrics, held-out period) so the admin can show why."""

    strategy = models.CharField(max_length=20, unique=True, choices=Widget.Strategy.choices)
    engine = models.CharField(
        max_length=32, blank=True, default="", help_text="Winner of the last evaluation (empty: none yet)."
    )
    metric = models.CharField(max_length=32, default="ndcg@10")
    figures = models.JSONField(default=dict, blank=True, help_text="Per engine: version, metrics, period.")
    decision = models.CharField(max_length=255, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    override = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="A merchandiser's choice; empty follows the evaluation.",
    )
    override_by = models.CharField(max_length=150, blank=True, default="")
    override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["strategy"]

    def __str__(self) -> str:
        return f"{self.strategy}: {self.effective_engine or 'default'}"

    @property
    def effective_engine(self) -> str:
        """The engine serving the strategy: the override when set, else the evaluation's winner."""
        return self.override or self.engine
