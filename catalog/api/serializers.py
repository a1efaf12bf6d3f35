"""Serializers that describe the catalog API in the OpenAPI schema.

Event validation itself lives in `catalog.services.events_record` (plain Python: a DRF serializer per
event costs more than the database insert). These classes document the same contract; a test checks
that their field set matches the service's.
"""

from django.conf import settings
from rest_framework import serializers

from catalog.models import Event


class EventContextSerializer(serializers.Serializer):
    page = serializers.CharField(required=False, help_text="Path or URL of the page.")
    device = serializers.CharField(required=False, help_text="e.g. desktop, mobile, tablet.")
    referrer = serializers.CharField(required=False, allow_blank=True)


class EventInSerializer(serializers.Serializer):
    """One behaviour event."""

    event_id = serializers.UUIDField(help_text="Client-generated UUID; re-sending the same id adds nothing.")
    type = serializers.ChoiceField(choices=Event.Type.choices)
    product_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Product id; this or `sku` is required unless type=search."
    )
    sku = serializers.CharField(
        required=False, max_length=64, help_text="Product SKU (alternative to product_id)."
    )
    customer = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Customer external_id (API-key clients only; browser requests take it from the login).",
    )
    visitor_id = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Anonymous visitor id; required without customer (browser requests default to the rs_vid cookie).",
    )
    session_id = serializers.CharField(
        required=False, max_length=64, help_text="Shopping session id (browser default: the rs_sid cookie)."
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text="ISO-8601 with a time-zone offset; default now. Rejected when more than "
        "RECSITE_EVENT_MAX_FUTURE_SKEW_SECONDS in the future.",
    )
    quantity = serializers.IntegerField(required=False, min_value=1, default=1)
    price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
    value = serializers.DecimalField(
        required=False,
        max_digits=14,
        decimal_places=2,
        min_value=0,
        help_text="Monetary value; purchases default to price x quantity.",
    )
    dwell_ms = serializers.IntegerField(required=False, min_value=0, help_text="Required for type=dwell.")
    query = serializers.CharField(required=False, max_length=255, help_text="Required for type=search.")
    rating = serializers.FloatField(
        required=False, min_value=0, max_value=5, help_text="Required for type=rate."
    )
    impression_id = serializers.UUIDField(
        required=False, help_text="The recommendation impression this event follows from (attribution)."
    )
    context = EventContextSerializer(required=False)


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(
        help_text="Position of the event in the request (0 for a single object)."
    )
    event_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    errors = serializers.DictField(
        child=serializers.CharField(), help_text="Field name -> message; empty unless rejected."
    )


class EventsResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)
    error = serializers.CharField(
        required=False, help_text="Present when every event was rejected (HTTP 400)."
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="One sentence a person can act on.")
    detail = serializers.JSONField(help_text="The original detail (string, list or field -> messages).")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    database = serializers.BooleanField()
    cache = serializers.BooleanField()


EVENT_BATCH_MAX = settings.RECSITE_EVENT_BATCH_MAX
