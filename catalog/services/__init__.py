"""Catalog writes. Each module holds one area; the public names are re-exported here.

Import as `from catalog.services import events_record`.
"""

from .cart import (  # noqa: F401
    CART_SESSION_KEY,
    IMPRESSIONS_SESSION_KEY,
    CartChange,
    CartError,
    ProductUnavailable,
    cart_clear,
    cart_impressions_read,
    cart_item_add,
    cart_item_remove,
    cart_item_update,
    cart_read,
)
from .customers import (  # noqa: F401
    Shopper,
    customer_ensure_for_user,
    customer_profile_update,
    customer_register,
    shopper_from_request,
    visitor_link,
)
from .events import EventResult, EventsRecordResult, events_record  # noqa: F401
from .orders import CheckoutError, order_place  # noqa: F401
from .seed import (  # noqa: F401
    DemoLogin,
    demo_data_delete,
    demo_data_present,
    demo_logins_create,
)
