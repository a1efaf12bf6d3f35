"""demo_admin creates one staff user per role (in its group only) and prints working logins."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from recsite.roles import DEMO_USERS, ROLES

pytestmark = pytest.mark.django_db


def _logins(out: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in out.splitlines():
        role = line.split(" login:", 1)[0]
        if role in ROLES:
            parts = line.split()
            found[role] = (parts[parts.index("user:") + 1], parts[parts.index("password:") + 1])
    return found


def test_demo_admin_prints_one_working_login_per_role():
    out = StringIO()
    call_command("demo_admin", "--base-url", "http://127.0.0.1:8131", stdout=out)
    text = out.getvalue()
    logins = _logins(text)
    assert set(logins) == set(ROLES)
    for role, (username, password) in logins.items():
        assert f"{role} login: http://127.0.0.1:8131/admin/  user: {username}" in text
        user = authenticate(username=username, password=password)
        assert user is not None and user.is_staff and not user.is_superuser
        assert [g.name for g in user.groups.all()] == [role]
        assert username == DEMO_USERS[role]
    # a second run resets the passwords and keeps one group per user
    call_command("demo_admin", stdout=StringIO())
    username, password = logins["Support"]
    assert authenticate(username=username, password=password) is None


def test_role_users_can_read_but_not_edit(client):
    out = StringIO()
    call_command("demo_admin", stdout=out)
    username, password = _logins(out.getvalue())["Support"]
    assert client.login(username=username, password=password)
    assert client.get("/admin/catalog/customer/").status_code == 200
    assert client.get("/admin/catalog/customer/add/").status_code == 403
    assert client.get("/admin/recommender/widget/").status_code == 403
