"""seed_demo and demo_admin on the small scale: deterministic, idempotent, --reset, bad arguments."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum

from catalog.models import (
    Brand,
    Category,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    ShoppingSession,
    Visitor,
)
from experiments.seeding import demo_data_seed
from recommender.models import Widget

pytestmark = pytest.mark.django_db
END = "2025-06-01"
END_DT = datetime(2025, 6, 1, tzinfo=UTC)


def _seed(*args, **kwargs) -> str:
    out = StringIO()
    call_command(
        "seed_demo", "--scale", "small", "--end-date", END, "--no-progress", *args, stdout=out, **kwargs
    )
    return out.getvalue()


def _snapshot() -> dict:
    return {
        "counts": {
            m.__name__: m.objects.count()
            for m in (Category, Brand, Product, Customer, Visitor, ShoppingSession, Event, Order, OrderLine)
        },
        "skus": list(Product.objects.order_by("sku").values_list("sku", "price", "title", "stock")),
        "events": list(
            Event.objects.order_by("event_id").values_list(
                "event_id",
                "type",
                "product__sku",
                "customer__external_id",
                "session_id",
                "timestamp",
                "quantity",
                "price",
                "dwell_ms",
                "query",
                "context",
            )
        ),
        "orders": list(Order.objects.order_by("session_id").values_list("session_id", "total", "created_at")),
        "customers": list(
            Customer.objects.order_by("external_id").values_list(
                "external_id", "age_band", "gender", "region", "consent", "created_at"
            )
        ),
    }


def test_small_seed_is_deterministic_across_a_reset():
    # given: a first seed
    _seed("--seed", "7")
    first = _snapshot()
    # when: the same seed again into a reset database
    _seed("--seed", "7", "--reset")
    second = _snapshot()
    # then: identical content, event UUIDs included
    assert first["counts"]["Event"] > 1000
    assert first["counts"]["Order"] > 0
    assert first == second


def test_other_seed_gives_other_data():
    _seed("--seed", "7")
    first = _snapshot()
    _seed("--seed", "8", "--reset")
    second = _snapshot()
    assert {e[0] for e in first["events"]}.isdisjoint({e[0] for e in second["events"]})
    assert first["skus"] != second["skus"]


def test_rerun_without_reset_does_nothing_and_says_so():
    _seed()
    before = _snapshot()
    out = _seed("--seed", "99")
    assert "Already seeded" in out and "--reset" in out
    assert _snapshot() == before


def test_hand_entered_catalog_counts_as_seeded(django_user_model):
    cat = Category.objects.create(name="Mine", slug="mine")
    Product.objects.create(sku="MY-1", title="Mine", slug="mine", category=cat, price=Decimal("1.00"))
    out = _seed()
    assert "Already seeded" in out
    assert Product.objects.count() == 1


def test_reset_replaces_the_data_and_keeps_users(django_user_model):
    _seed("--seed", "1")
    user = django_user_model.objects.create_user("keepme", password="pw-123456!")
    n_first = Event.objects.count()
    out = _seed("--seed", "2", "--reset", "--customers", "120", "--products", "60", "--days", "7")
    assert "Seeded 60 products, 120 customers" in out
    assert Product.objects.count() == 60 and Customer.objects.count() == 120
    assert Event.objects.count() != n_first
    assert get_user_model().objects.filter(pk=user.pk).exists()


def test_seeded_data_is_consistent():
    _seed("--seed", "3")
    start, end = END_DT - timedelta(days=14), END_DT
    # every event lies in the window and belongs to a stored session of its customer's visitor
    span = Event.objects.order_by("timestamp")
    assert span.first().timestamp >= start and span.last().timestamp < end + timedelta(hours=2)
    sessions = dict(ShoppingSession.objects.values_list("id", "customer_id"))
    for session_id, customer_id in Event.objects.values_list("session_id", "customer_id").distinct():
        assert sessions[session_id] == customer_id
    # each order's total is the sum of its lines, and its lines are the session's purchase events
    for order in Order.objects.prefetch_related("lines"):
        assert order.total == sum(line.line_total for line in order.lines.all())
        bought = dict(
            Event.objects.filter(session_id=order.session_id, type="purchase")
            .values("product_id")
            .annotate(q=Sum("quantity"))
            .values_list("product_id", "q")
        )
        assert bought == {line.product_id: line.quantity for line in order.lines.all()}
    purchase_value = Event.objects.filter(type="purchase").aggregate(v=Sum("value"))["v"]
    assert purchase_value == Order.objects.aggregate(t=Sum("total"))["t"]
    # product launch dates are spread, not the insert time
    created = Product.objects.values_list("created_at", flat=True)
    assert min(created) < start - timedelta(days=60) and max(created) > start
    # visitors were last seen at their latest session
    v = Visitor.objects.annotate(n=Count("sessions")).filter(n__gt=0).first()
    assert v.last_seen == v.sessions.order_by("-last_seen").first().last_seen
    # clicks on recommendations name the slot; product events reference products
    rec_click = Event.objects.filter(type="click", context__source="recommendation").first()
    assert rec_click is not None and rec_click.context["placement"] in ("home", "product", "cart")
    assert not Event.objects.filter(type="view", product__isnull=True).exists()
    assert Category.objects.filter(parent__parent__isnull=False).exists()  # three levels
    assert set(Event.objects.values_list("type", flat=True)) >= {
        "view",
        "click",
        "add_to_cart",
        "purchase",
        "search",
        "dwell",
    }


def test_seed_creates_the_default_widgets():
    _seed()
    assert Widget.objects.filter(slug="home-personalized").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "-1"], "customers must be"),
        (["--products", "0"], "products must be"),
        (["--days", "0"], "days must be"),
        (["--seed", "-4"], "seed must be"),
        (["--scale", "huge"], "Unknown --scale 'huge'"),
        (["--end-date", "yesterday"], "--end-date must look like"),
    ],
)
def test_bad_arguments_are_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", *args, "--no-progress", stdout=StringIO())
    assert not Product.objects.exists()


def test_service_rejects_naive_end():
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_data_seed(customers=1, products=1, days=1, end=datetime(2025, 1, 1))


def test_zero_customers_seeds_a_catalog_only():
    out = _seed("--customers", "0")
    assert "Seeded 80 products, 0 customers" in out
    assert Product.objects.count() == 80 and not Event.objects.exists()


def test_demo_admin_prints_working_logins():
    _seed("--seed", "5")
    out = StringIO()
    call_command("demo_admin", stdout=out)
    lines = out.getvalue().strip().splitlines()
    admin_lines = [line for line in lines if line.startswith("Admin login:")]
    assert len(admin_lines) == 1
    assert admin_lines[0].startswith("Admin login: http://127.0.0.1:8000/admin/  user: admin  password: ")
    password = admin_lines[0].rsplit(" ", 1)[1]
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff
    shopper_lines = [line for line in lines if line.startswith("Demo shopper login:")]
    assert 1 <= len(shopper_lines) <= 3
    parts = shopper_lines[0].split()
    username, pw = parts[parts.index("user:") + 1], parts[parts.index("password:") + 1]
    shopper = authenticate(username=username, password=pw)
    assert shopper is not None and not shopper.is_staff
    assert shopper.customer.orders.exists() and shopper.customer.consent != "none"
    # running it again resets the passwords (the old one stops working) and keeps one link per user
    call_command("demo_admin", stdout=StringIO())
    assert authenticate(username="admin", password=password) is None
    assert Customer.objects.filter(user__username=username).count() == 1


def test_demo_admin_without_seeded_data_still_creates_the_admin():
    out = StringIO()
    call_command("demo_admin", stdout=out)
    assert out.getvalue().count("Admin login:") == 1
    assert "run `manage.py seed_demo`" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--shoppers", "7"], "shoppers must be"), (["--base-url", "localhost:8000"], "--base-url must start")],
)
def test_demo_admin_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("demo_admin", *args, stdout=StringIO())


def test_scales_match_the_documented_sizes():
    from experiments.seeding import SCALES

    assert (SCALES["default"].customers, SCALES["default"].products, SCALES["default"].days) == (
        10_000,
        500,
        60,
    )
    assert (SCALES["large"].customers, SCALES["large"].products) == (100_000, 50_000)
    assert SCALES["small"].customers < 1000 and SCALES["small"].products < 200
