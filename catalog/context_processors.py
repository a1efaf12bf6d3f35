from django.http import HttpRequest

from .services.cart import cart_read


def storefront(request: HttpRequest) -> dict:
    """Values every storefront template needs: cart size, the top-level categories for the menu, and
    the visitor/session ids the tracking snippet sends with each event (set by VisitorMiddleware)."""
    session = getattr(request, "session", None)
    cart = cart_read(session=session) if session is not None else {}
    return {
        "cart_count": sum(cart.values()),
        "rs_visitor_id": getattr(request, "visitor_id", ""),
        "rs_session_id": getattr(request, "shopping_session_id", ""),
        "nav_categories": _nav_categories,
    }


def _nav_categories() -> list:
    """Called lazily by the template (the admin never pays for it); the tree is cached."""
    from .selectors import category_menu_get

    return category_menu_get()
