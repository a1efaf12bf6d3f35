"""`python manage.py precompute_recommendations [--model-version ID] [--limit N]`: batch inference into the cache."""

from django.core.management.base import BaseCommand, CommandError

from recommender.batch import batch_inference_run


class Command(BaseCommand):
    help = (
        "Precompute each active customer's top candidates for the model versions that enabled personalized "
        "widgets serve (or one --model-version), into the cache (keyed by model version)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model-version", dest="model_version", type=int, default=None, help="Only this ModelVersion id."
        )
        parser.add_argument(
            "--limit", type=int, default=None, help="At most this many customers (smoke runs)."
        )

    def handle(self, *args, model_version=None, limit=None, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        try:
            results = batch_inference_run(model_version_id=model_version, limit=limit)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not results:
            self.stdout.write(
                self.style.WARNING(
                    "Nothing to precompute: no enabled personalized widget has a trained (active or pinned) "
                    "model version. Run `manage.py train --all` first."
                )
            )
            return
        for r in results:
            line = (
                f"{r.engine} v{r.model_version_id}: {r.customers} customers cached, "
                f"{r.skipped} unknown to the model, {r.seconds:.1f}s"
            )
            if r.cache_ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                self.stdout.write(
                    self.style.WARNING(line + " (the cache refused some writes; serving scores live)")
                )
