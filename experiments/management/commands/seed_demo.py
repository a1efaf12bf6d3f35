"""`manage.py seed_demo`: fill the shop with a generated catalog and simulated shopper behaviour."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.seeding import SCALES, demo_data_seed, seed_arguments_check


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    def make(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="session", file=sys.stderr, dynamic_ncols=True, leave=False)

    return make


class Command(BaseCommand):
    help = (
        "Seed the demo shop: categories, brands, products, customers and simulated visits (views, clicks, "
        "carts, purchases, searches, ratings) with orders. Deterministic for a seed; does nothing when the "
        "catalog already has data unless --reset. Scales: "
        + ", ".join(
            f"{k} ({v.customers:,} customers, {v.products:,} products, {v.days} days)"
            for k, v in SCALES.items()
        )
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale", default="default", help="small, default or large (sets the three sizes below)"
        )
        parser.add_argument("--customers", type=int, help="number of customers (overrides the scale)")
        parser.add_argument("--products", type=int, help="number of products (overrides the scale)")
        parser.add_argument(
            "--days", type=int, help="length of the simulated period in days (overrides the scale)"
        )
        parser.add_argument(
            "--seed", type=int, default=42, help="random seed (same seed, same data); default 42"
        )
        parser.add_argument(
            "--end-date",
            help="last day of the simulated period is the day before this date, YYYY-MM-DD (default: today, UTC)",
        )
        parser.add_argument("--reset", action="store_true", help="delete catalog and behaviour data first")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        scale_name = options["scale"]
        if scale_name not in SCALES:
            raise CommandError(f"Unknown --scale {scale_name!r}: choose one of {', '.join(SCALES)}.")
        scale = SCALES[scale_name]
        customers = scale.customers if options["customers"] is None else options["customers"]
        products = scale.products if options["products"] is None else options["products"]
        days = scale.days if options["days"] is None else options["days"]
        end = None
        if options["end_date"]:
            try:
                end = datetime.strptime(options["end_date"], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise CommandError(
                    f"--end-date must look like 2025-01-31 (got {options['end_date']!r})."
                ) from None
        try:
            seed_arguments_check(customers=customers, products=products, days=days, seed=options["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verbosity = options["verbosity"]
        progress = _progress_factory(not options["no_progress"] and verbosity > 0)
        log = (lambda line: self.stdout.write(line)) if verbosity >= 2 else None
        if verbosity > 0:
            self.stdout.write(
                f"Seeding {customers:,} customers, {products:,} products, {days} days (seed {options['seed']})..."
            )
        try:
            result = demo_data_seed(
                customers=customers,
                products=products,
                days=days,
                seed=options["seed"],
                end=end,
                reset=options["reset"],
                progress=progress,
                log=log,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not result.seeded:
            self.stdout.write(self.style.WARNING(result.message))
            return
        self.stdout.write(
            self.style.SUCCESS(f"{result.message} {result.rows:,} rows in {result.seconds:.1f} s.")
        )
