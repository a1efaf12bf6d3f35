"""`manage.py demo_visits [--customers N]`: serve the storefront widgets to the demo shoppers (and the
customers with the most orders) as their visits would, logging impressions and decision traces, so that
the support console has past lists to explain right after `make demo`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.support.demo import demo_visits_serve


class Command(BaseCommand):
    help = (
        "Serve the home and product-page widgets to demo customers, logging impressions and decision traces."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers", type=int, default=10, help="customers to visit, 1-200 (default 10)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            visited, lists = demo_visits_serve(customers=options["customers"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Served {lists} recommendation lists to {visited} customers (impressions and traces logged)."
        )
