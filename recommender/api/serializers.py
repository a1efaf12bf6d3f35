"""Response shapes of the recommendations API (used for the OpenAPI schema; the view builds plain dicts)."""

from rest_framework import serializers


class RecommendationItemSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    title = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    url = serializers.CharField(help_text="Product page, relative to the site.")
    image = serializers.CharField(
        help_text="Image URL (a generated SVG placeholder when the product has none)."
    )
    score = serializers.FloatField()
    reason = serializers.CharField(help_text='Why it is shown, e.g. "Because you viewed X", "Trending now".')
    impression_id = serializers.UUIDField(
        allow_null=True, help_text="Send it back with click / add-to-cart / purchase events for attribution."
    )
    engine = serializers.CharField(help_text="Source engine or fallback list.")
    position = serializers.IntegerField(help_text="0-based slot.")


class RecommendationsResponseSerializer(serializers.Serializer):
    widget = serializers.CharField()
    title = serializers.CharField()
    request_id = serializers.UUIDField()
    items = RecommendationItemSerializer(many=True)


class ApiErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.JSONField()
