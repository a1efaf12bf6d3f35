from django.http import HttpRequest


def storefront(request: HttpRequest) -> dict:
    """Values every storefront template needs (cart size, visitor ids for the tracking snippet)."""
    cart = request.session.get("cart", {}) if hasattr(request, "session") else {}
    return {
        "cart_count": sum(int(q) for q in cart.values()) if isinstance(cart, dict) else 0,
        "rs_visitor_id": getattr(request, "visitor_id", ""),
        "rs_session_id": getattr(request, "shopping_session_id", ""),
    }
