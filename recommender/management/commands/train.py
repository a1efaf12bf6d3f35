"""`python manage.py train [--engine NAME ...] [--all] [--no-promote] [--params JSON]`

Trains synchronously (no Celery) with a progress bar per engine; this is what `make demo` and the
benchmarks use. `--all` trains every engine the enabled widgets need (recommender.strategies), plus the
popularity fallback; for the personalized strategy that is every candidate of the engine choice (the
hybrid included), and the winner of the held-out evaluation is printed at the end. The events are read
and split once for all the engines of one call. Exits non-zero when any run failed.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.models import Event
from recommender.engines import REGISTRY
from recommender.models import EngineChoice, TrainingRun
from recommender.training import (
    METRIC_KEYS,
    NO_EVENTS_MESSAGE,
    TrainingInput,
    engines_needed_by_widgets,
    training_input_load,
    training_run_create,
    training_run_execute,
)


class Command(BaseCommand):
    help = "Train recommendation engines on the shop's events, evaluate them and update the model registry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--engine",
            action="append",
            default=[],
            metavar="NAME",
            help=f"Engine to train (repeatable or comma-separated): {', '.join(sorted(REGISTRY))}.",
        )
        parser.add_argument("--all", action="store_true", help="Train every engine the enabled widgets need.")
        parser.add_argument(
            "--no-promote", action="store_true", help="Keep new versions as candidates (never promote)."
        )
        parser.add_argument(
            "--params",
            default="",
            help="Engine parameters as a JSON object (with one --engine), e.g. '{\"l2\": 200}'.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs and CI).")

    def handle(self, *args, **options) -> None:
        engines = [e.strip() for value in options["engine"] for e in value.split(",") if e.strip()]
        unknown = [e for e in engines if e not in REGISTRY]
        if unknown:
            raise CommandError(
                f"Unknown engine(s): {', '.join(unknown)}. Known engines: {', '.join(sorted(REGISTRY))}."
            )
        if options["all"]:
            engines = list(dict.fromkeys(engines + engines_needed_by_widgets()))
        if not engines:
            raise CommandError(
                "Name engines with --engine NAME, or pass --all to train what the widgets need."
            )
        params = self._params(options["params"], engines)
        if not Event.objects.filter(product__isnull=False).exists():
            raise CommandError(NO_EVENTS_MESSAGE)

        data = training_input_load()  # read and split once for every engine of this call
        runs = []
        for engine in engines:
            try:
                run = training_run_create(
                    engine=engine,
                    params=params,
                    trigger=TrainingRun.Trigger.COMMAND,
                    auto_promote=not options["no_promote"],
                    enqueue=False,
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            runs.append(self._execute(run, quiet=options["no_progress"], data=data))
        for choice in EngineChoice.objects.filter(decided_at__isnull=False):
            served = choice.effective_engine or "the default engine"
            note = f" (overridden by {choice.override_by or 'a merchandiser'})" if choice.override else ""
            self.stdout.write(f"{choice.strategy} engine: {served}{note}. {choice.decision}")

        failed = [r for r in runs if r.status != TrainingRun.Status.SUCCEEDED]
        if failed:
            raise CommandError(
                "Training failed for: "
                + ", ".join(f"{r.engine} (run #{r.pk}: {r.progress_message})" for r in failed)
            )

    def _params(self, raw: str, engines: list[str]) -> dict:
        if not raw:
            return {}
        if len(engines) != 1:
            raise CommandError("--params applies to exactly one --engine.")
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise CommandError("--params must be a JSON object, e.g. '{\"l2\": 200}'.")
        return params

    def _execute(self, run: TrainingRun, *, quiet: bool, data: TrainingInput | None = None) -> TrainingRun:
        bar = tqdm(
            total=100,
            desc=f"{run.engine:>10}",
            unit="%",
            bar_format="{desc} |{bar}| {n:3.0f}%{postfix}",
            disable=quiet,
            file=self.stderr._out,
            leave=True,
        )

        def progress(pct: int, message: str) -> None:
            bar.update(pct - bar.n)
            bar.set_postfix_str(message[:60])

        try:
            run = training_run_execute(run_id=run.pk, progress=progress, data=data)
        finally:
            bar.close()
        if run.status == TrainingRun.Status.SUCCEEDED:
            version = run.model_version
            metrics = ", ".join(
                f"{k} {version.metrics[k]:.4f}"
                for k in METRIC_KEYS
                if isinstance(version.metrics.get(k), float)
            )
            seconds = run.timings.get("total", 0.0)
            self.stdout.write(
                self.style.SUCCESS(f"{run.engine}: v{version.pk} {version.status} in {seconds:.1f}s")
                + (f" [{metrics}]" if metrics else "")
                + f" ({run.progress_message})"
            )
        else:
            self.stderr.write(
                self.style.ERROR(f"{run.engine}: run #{run.pk} failed: {run.error.strip()[-500:]}")
            )
        return run
