"""Celery tasks: thin adapters that take ids and call one service each (recommender.training).

Routing: `training_run_execute_torch_task` goes to the `training` queue (CELERY_TASK_ROUTES, GPU
workers); everything else to `default`. The nightly retrain is scheduled by django-celery-beat (a
PeriodicTask created by migration recommender 0002); the new-events check by CELERY_BEAT_SCHEDULE.
"""

from celery import shared_task

from . import training


@shared_task(name="recommender.tasks.training_run_execute_task")
def training_run_execute_task(run_id: int) -> str | None:
    """Execute a training run of a non-torch engine (queue `default`). Idempotent."""
    run = training.training_run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(name="recommender.tasks.training_run_execute_torch_task")
def training_run_execute_torch_task(run_id: int) -> str | None:
    """Execute a training run of a torch engine (queue `training`, CUDA when the worker has it)."""
    run = training.training_run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(name="recommender.tasks.retrain_nightly_task")
def retrain_nightly_task() -> list[int]:
    """Create runs for every engine enabled widgets need; returns the new run ids."""
    return [run.pk for run in training.training_runs_schedule()]


@shared_task(name="recommender.tasks.retrain_if_events_task")
def retrain_if_events_task() -> list[int]:
    """Create runs for engines with more new events than RECSITE_RETRAIN_EVENT_THRESHOLD since their
    last successful run (also marks runs whose worker died as failed)."""
    return [run.pk for run in training.training_runs_create_if_events()]


@shared_task(name="recommender.tasks.decision_traces_purge_task")
def decision_traces_purge_task() -> int:
    """Delete decision traces older than RECSITE_TRACE_RETENTION_DAYS (daily, django-celery-beat task
    created by migration recommender 0003). Idempotent."""
    from .services import decision_traces_purge

    return decision_traces_purge()


from .batch import batch_inference_task  # noqa: E402,F401  (batch inference; registered with Celery here)
