"""`manage.py create_api_key NAME`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework_api_key.models import APIKey

from tests.catalog.api_fixtures import new_event
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _create(*args):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_a_working_key_as_the_last_word():
    out, _ = _create("shop-backend")
    key = out.split()[-1]
    assert APIKey.objects.is_valid(key)
    assert APIKey.objects.get_from_key(key).name == "shop-backend"
    # and the key opens the events endpoint
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post(
        "/api/v1/events", data=new_event(product_id=ProductFactory().pk), content_type="application/json"
    )
    assert response.status_code == 200


def test_each_call_makes_a_new_key_and_warns_on_a_reused_name():
    first, _ = _create("crm")
    second, err = _create("crm")
    assert first.split()[-1] != second.split()[-1]
    assert "already named 'crm'" in err
    assert APIKey.objects.filter(name="crm").count() == 2


def test_expiry_option():
    out, _ = _create("temp", "--expires-days", "7")
    api_key = APIKey.objects.get_from_key(out.split()[-1])
    assert api_key.expiry_date is not None and not api_key.has_expired
    assert "expires" in out


@pytest.mark.parametrize(
    "args, message",
    [(["  "], "must not be empty"), (["x" * 51], "too long"), (["ok", "--expires-days", "0"], "at least 1")],
)
def test_bad_arguments_are_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        _create(*args)
    assert APIKey.objects.count() == 0
