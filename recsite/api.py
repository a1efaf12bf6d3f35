"""Shared REST plumbing: one error shape for every API answer."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Wrap DRF errors as {"error": <message>, "detail": <original detail>} so clients read one shape."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail and len(detail) == 1:
        message = str(detail["detail"])
    elif isinstance(detail, dict | list):
        message = "Invalid input."
    else:
        message = str(detail)
    response.data = {"error": message, "detail": detail}
    return response
