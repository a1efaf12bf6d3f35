"""`manage.py demo_admin`: create (or reset) the admin user and demo shopper logins; print credentials."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

from catalog.services.seed import demo_logins_create
from recsite.roles import demo_role_users_create


class Command(BaseCommand):
    help = (
        "Create or reset the superuser 'admin' with a new random password, and link demo shopper users "
        "(shopper1..N) to seeded customers with purchase history, and one staff user per role "
        "(merchandiser, support, analyst: recsite/roles.py); prints the logins."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the site is served")
        parser.add_argument(
            "--shoppers", type=int, default=2, help="demo shopper logins to create, 0-3 (default 2)"
        )

    def handle(self, *args, **options) -> None:
        base = options["base_url"].rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise CommandError(
                f"--base-url must start with http:// or https:// (got {options['base_url']!r})."
            )
        try:
            admin, shoppers = demo_logins_create(shoppers=options["shoppers"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            login_path = reverse("catalog:login")
        except NoReverseMatch:
            login_path = "/account/login/"
        self.stdout.write(f"Admin login: {base}/admin/  user: {admin.username}  password: {admin.password}")
        for role, username, password in demo_role_users_create():
            self.stdout.write(f"{role} login: {base}/admin/  user: {username}  password: {password}")
        for s in shoppers:
            self.stdout.write(
                f"Demo shopper login: {base}{login_path}  user: {s.username}  password: {s.password}  "
                f"(customer {s.customer}: {s.orders} order{'s' if s.orders != 1 else ''}, {s.events} events)"
            )
        if options["shoppers"] and not shoppers:
            self.stdout.write(
                "No seeded customers with orders yet: run `manage.py seed_demo`, then demo_admin again."
            )
