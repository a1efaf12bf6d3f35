"""Storefront template helpers: money, attribute values, query-string building for filters/pagination."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django import template

register = template.Library()

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


@register.filter
def money(value, currency: str = "USD") -> str:
    """1299.5, "USD" -> "$1,299.50"; unknown currencies get their code after the amount."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    text = f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(str(currency).upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


@register.filter
def attr_value(value) -> str:
    """Show a product attribute value: lists joined, booleans as Yes/No."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(attr_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {attr_value(v)}" for k, v in value.items())
    return str(value)


def _params(request) -> list[tuple[str, str]]:
    return [(k, v) for k, values in request.GET.lists() for v in values]


@register.simple_tag(takes_context=True)
def query_replace(context, **changes) -> str:
    """The current query string with `changes` applied (None/"" removes a key); `page` resets unless given."""
    request = context["request"]
    params = [(k, v) for k, v in _params(request) if k not in changes and k != "page"]
    for key, value in changes.items():
        if value not in (None, ""):
            params.append((key, str(value)))
    return "?" + urlencode(params) if params else "?"


@register.simple_tag(takes_context=True)
def query_without(context, key: str, value: object = None) -> str:
    """The current query string without `key` (or without only `key=value`), page reset."""
    request = context["request"]
    params = [
        (k, v)
        for k, v in _params(request)
        if k != "page" and not (k == key and (value is None or v == str(value)))
    ]
    return "?" + urlencode(params) if params else "?"
