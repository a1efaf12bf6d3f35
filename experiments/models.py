"""A/B experiments on recommendation widgets: experiments, variants, exposures."""

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from recommender.models import ModelVersion, Widget


def _new_salt() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"

    class Metric(models.TextChoices):
        CTR = "ctr", "Click-through rate"
        ADD_TO_CART = "add_to_cart_rate", "Add-to-cart rate"
        CONVERSION = "conversion_rate", "Conversion rate (sessions with a purchase)"
        AOV = "aov", "Average order value"
        REVENUE_PER_VISITOR = "revenue_per_visitor", "Revenue per visitor"
        SESSION_DURATION = "session_duration", "Session duration"
        DWELL = "dwell", "Dwell time"
        RETURN_RATE = "return_rate_14d", "14-day return rate"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    hypothesis = models.TextField(blank=True)
    widgets = models.ManyToManyField(Widget, related_name="experiments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    traffic_share = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of shoppers in the experiment (0-1).",
    )
    holdout_share = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of participating shoppers held out (they see the widget's default behaviour).",
    )
    primary_metric = models.CharField(max_length=24, choices=Metric.choices, default=Metric.CTR)
    guardrail_metrics = models.JSONField(
        default=list,
        blank=True,
        help_text="e.g. ['coverage', 'diversity', 'popularity_share', 'latency_p95']",
    )
    minimum_detectable_effect = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.001)],
        help_text="Relative effect to detect, e.g. 0.05 = 5%.",
    )
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)])
    salt = models.CharField(max_length=32, default=_new_salt, editable=False)
    allocation = models.JSONField(
        default=list, blank=True, editable=False, help_text="Bucket -> variant id table."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1),
                name="experiment_traffic_share_range",
            ),
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lte=0.5), name="experiment_holdout_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One arm. Empty override fields mean "as the widget is configured"; exactly one control."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=64)
    is_control = models.BooleanField(default=False)
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    strategy = models.CharField(max_length=20, blank=True, default="", choices=Widget.Strategy.choices)
    engine = models.CharField(max_length=32, blank=True, default="")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    params = models.JSONField(
        default=dict, blank=True, help_text="Strategy parameters (e.g. exploration rate)."
    )
    rules = models.JSONField(
        default=list,
        blank=True,
        help_text='Rule overrides: [{"kind": "max_per_brand", "params": {"n": 2}}]; empty keeps the widget\'s.',
    )

    class Meta:
        ordering = ["experiment", "-is_control", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="variant_one_control_per_experiment"
            ),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.slug}/{self.name}"

    def clean(self) -> None:
        if self.strategy and self.strategy not in Widget.Strategy.values:
            raise ValidationError({"strategy": "Unknown strategy."})


class Exposure(models.Model):
    """First time a shopper was shown a variant (the per-impression link is Impression.experiment/variant)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="exposures"
    )
    subject_id = models.CharField(max_length=64, help_text="Customer external id or visitor id.")
    holdout = models.BooleanField(default=False)
    first_exposed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "subject_id"], name="exposure_once_per_subject"),
        ]
        indexes = [models.Index(fields=["experiment", "variant"])]

    def __str__(self) -> str:
        return f"{self.subject_id} in {self.experiment_id}"
