"""Sign-up, login (visitor linking), logout, account page and privacy choices."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from catalog.models import Customer, Event, Visitor
from tests.factories import CustomerFactory, OrderFactory, OrderLineFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"


def _signup_data(**overrides):
    data = {
        "username": "ada",
        "email": "ada@example.com",
        "password1": "correct-horse-battery",
        "password2": "correct-horse-battery",
        "age_band": "25-34",
        "gender": "f",
        "region": " London ",
        "consent": "full",
    }
    data.update(overrides)
    return data


def test_signup_creates_user_and_linked_customer_and_logs_in(client):
    client.get(reverse("catalog:home"))
    visitor = client.cookies["rs_vid"].value
    response = client.post(reverse("catalog:signup"), _signup_data())
    assert response.status_code == 302 and response["Location"] == reverse("catalog:account")
    user = get_user_model().objects.get(username="ada")
    customer = Customer.objects.get(user=user)
    assert (customer.age_band, customer.gender, customer.region, customer.consent) == (
        "25-34",
        "f",
        "London",
        "full",
    )
    assert customer.external_id == f"web-{user.pk}"
    assert Visitor.objects.get(pk=visitor).customer == customer
    assert client.get(reverse("catalog:account")).status_code == 200


def test_signup_demographics_are_optional(client):
    response = client.post(
        reverse("catalog:signup"), _signup_data(age_band="", gender="", region="", consent="none")
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.age_band, customer.gender, customer.region, customer.consent) == ("", "", "", "none")


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"password2": "different-one-123"}, "didn’t match"),
        ({"password1": "123", "password2": "123"}, "too short"),
        ({"email": "nope"}, "Enter a valid email address"),
        ({"consent": "everything"}, "Select a valid choice"),
        ({"age_band": "12-17"}, "Select a valid choice"),
        ({"username": ""}, "This field is required"),
    ],
)
def test_signup_validation_errors(client, overrides, error):
    response = client.post(reverse("catalog:signup"), _signup_data(**overrides))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Customer.objects.exists()


def test_signup_refuses_taken_username_and_email(client):
    UserFactory(username="ada", email="other@example.com")
    UserFactory(username="bob", email="ada@example.com")
    response = client.post(reverse("catalog:signup"), _signup_data())
    html = response.content.decode()
    assert "A user with that username already exists" in html
    assert "An account with this email exists already" in html


def test_login_links_visitor_and_attributes_anonymous_events(client):
    user = UserFactory(username="grace")
    customer = CustomerFactory(user=user)
    product = ProductFactory()
    client.get(reverse("catalog:home"))
    visitor = client.cookies["rs_vid"].value
    Event.objects.create(
        event_id=uuid.uuid4(), type="view", product=product, visitor_id=visitor, timestamp=timezone.now()
    )
    response = client.post(reverse("catalog:login"), {"username": "grace", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("catalog:account")
    assert Visitor.objects.get(pk=visitor).customer == customer
    assert Event.objects.get().customer == customer


def test_login_creates_a_customer_for_a_user_without_one(client):
    user = UserFactory(username="staff")
    client.post(reverse("catalog:login"), {"username": "staff", "password": PASSWORD})
    assert Customer.objects.get(user=user).consent == Customer.Consent.BASIC


def test_login_keeps_the_cart(client):
    UserFactory(username="grace")
    product = ProductFactory()
    client.post(reverse("catalog:cart_add", args=[product.pk]), {"quantity": "2"})
    client.post(reverse("catalog:login"), {"username": "grace", "password": PASSWORD})
    assert client.get(reverse("catalog:cart")).context["cart"].count == 2


def test_wrong_password_is_a_message_not_a_link(client):
    UserFactory(username="grace")
    response = client.post(reverse("catalog:login"), {"username": "grace", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not Visitor.objects.exists()


def test_login_next_is_followed_only_on_site(client):
    UserFactory(username="grace")
    response = client.post(
        reverse("catalog:login") + "?next=/checkout/", {"username": "grace", "password": PASSWORD}
    )
    assert response["Location"] == "/checkout/"
    client.logout()
    response = client.post(
        reverse("catalog:login") + "?next=https://evil.example/", {"username": "grace", "password": PASSWORD}
    )
    assert response["Location"] == reverse("catalog:account")


def test_logout_is_a_post(client):
    user = UserFactory()
    client.force_login(user)
    assert client.get(reverse("catalog:logout")).status_code == 405
    response = client.post(reverse("catalog:logout"))
    assert response.status_code == 302
    assert client.get(reverse("catalog:account")).status_code == 302


def test_account_shows_orders_and_recently_viewed(client):
    user = UserFactory()
    customer = CustomerFactory(user=user)
    order = OrderFactory(customer=customer)
    OrderLineFactory(order=order, product=ProductFactory(title="Bought kettle"))
    OrderFactory()  # someone else's
    seen_old, seen_new = ProductFactory(title="Seen first"), ProductFactory(title="Seen last")
    now = timezone.now()
    Event.objects.create(
        event_id=uuid.uuid4(),
        type="view",
        product=seen_old,
        customer=customer,
        timestamp=now.replace(year=now.year - 1),
    )
    Event.objects.create(
        event_id=uuid.uuid4(), type="view", product=seen_new, customer=customer, timestamp=now
    )
    Event.objects.create(
        event_id=uuid.uuid4(), type="view", product=seen_new, customer=customer, timestamp=now
    )
    client.force_login(user)
    response = client.get(reverse("catalog:account"))
    assert [o.pk for o in response.context["orders"]] == [order.pk]
    assert "Bought kettle" in response.content.decode()
    assert [p.title for p in response.context["recently_viewed"]] == ["Seen last", "Seen first"]


def test_privacy_choices_are_editable(client):
    user = UserFactory()
    customer = CustomerFactory(user=user, consent="full")
    client.force_login(user)
    response = client.post(
        reverse("catalog:account"), {"consent": "none", "age_band": "", "gender": "", "region": ""}
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.consent == "none"
    assert "Your privacy choices are saved" in client.get(reverse("catalog:account")).content.decode()


def test_invalid_privacy_choice_is_refused(client):
    user = UserFactory()
    customer = CustomerFactory(user=user, consent="basic")
    client.force_login(user)
    response = client.post(
        reverse("catalog:account"), {"consent": "sell-my-data", "age_band": "", "gender": "", "region": ""}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    customer.refresh_from_db()
    assert customer.consent == "basic"
