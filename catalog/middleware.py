"""Gives every browser a stable anonymous visitor id (cookie `rs_vid`) and a shopping-session id."""

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

VISITOR_COOKIE = "rs_vid"
SESSION_COOKIE = "rs_sid"
SESSION_IDLE_SECONDS = 30 * 60
VISITOR_MAX_AGE = 365 * 24 * 3600


class VisitorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        vid = request.COOKIES.get(VISITOR_COOKIE, "")
        if not _valid_id(vid):
            vid = uuid.uuid4().hex
        sid = request.COOKIES.get(SESSION_COOKIE, "")
        if not _valid_id(sid):
            sid = uuid.uuid4().hex
        request.visitor_id = vid  # type: ignore[attr-defined]
        request.shopping_session_id = sid  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.set_cookie(VISITOR_COOKIE, vid, max_age=VISITOR_MAX_AGE, samesite="Lax", httponly=False)
        # Sliding expiry: 30 idle minutes end a shopping session.
        response.set_cookie(SESSION_COOKIE, sid, max_age=SESSION_IDLE_SECONDS, samesite="Lax", httponly=False)
        return response


def _valid_id(value: str) -> bool:
    return 8 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)
