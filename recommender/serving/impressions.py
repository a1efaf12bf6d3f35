"""Stage 6, the impression log and the decision trace record.

`impressions_write` writes one served list's impressions (and its decision trace, when
RECSITE_TRACE_RECORD is on) in one bulk insert per table, or hands them to a buffered background writer
when RECSITE_IMPRESSIONS_ASYNC is on (as under `make serve`): one daemon thread per process flushes every
0.5 s, builds the traces and their JSON there, and never blocks a request (a full buffer writes inline,
with a warning). The log must not cost the shopper their recommendations: failures are logged, not raised.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from ..models import DecisionTraceRecord, Impression
from .slots import ImpressionBatch
from .tracing import TraceDraft

logger = logging.getLogger("recommender.serving")

Pending = tuple[list[Impression] | ImpressionBatch, TraceDraft | None]


def trace_recording() -> bool:
    return bool(getattr(settings, "RECSITE_TRACE_RECORD", True))


def _trace_row(draft: TraceDraft, batch: Any) -> DecisionTraceRecord | None:
    """The trace row of a list (None for rows that are not one served list, e.g. the chat's own rows)."""
    if not isinstance(batch, ImpressionBatch):
        return None
    return DecisionTraceRecord(
        request_id=batch.request_id,
        widget_id=batch.widget_id,
        customer_id=batch.customer_id,
        visitor_id=batch.visitor_id,
        created_at=batch.created_at,
        trace=draft.build().to_json(),
    )


def _write(pending: list[Pending]) -> None:
    rows: list[Impression] = []
    traces: list[DecisionTraceRecord] = []
    for batch, draft in pending:
        rows.extend(batch.rows() if isinstance(batch, ImpressionBatch) else batch)
        if draft is not None:
            try:
                row = _trace_row(draft, batch)
            except Exception:  # a trace bug must not cost the impressions
                logger.exception(
                    "building the decision trace of %s failed", getattr(batch, "request_id", "?")
                )
                row = None
            if row is not None:
                traces.append(row)
    if rows:
        Impression.objects.bulk_create(rows, batch_size=1000)
    if traces:
        try:
            DecisionTraceRecord.objects.bulk_create(traces, batch_size=500, ignore_conflicts=True)
        except Exception:
            logger.exception("writing %s decision traces failed", len(traces))


class ImpressionWriter:
    """Buffers impressions (and traces) and writes them from one daemon thread (flushes every 0.5 s)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Pending] = queue.Queue(maxsize=10_000)
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, batch: list[Impression] | ImpressionBatch, draft: TraceDraft | None) -> None:
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self._run, name="impression-writer", daemon=True)
                    self.thread.start()
                    atexit.register(self.flush)
        try:
            self.queue.put_nowait((batch, draft))
        except queue.Full:  # never block a request on the log; say so loudly
            logger.warning("impression buffer full; writing a list's impressions inline")
            _write([(batch, draft)])

    def _drain(self) -> list[Pending]:
        pending: list[Pending] = []
        while True:
            try:
                pending.append(self.queue.get_nowait())
            except queue.Empty:
                return pending

    def flush(self) -> None:
        pending = self._drain()
        if pending:
            try:
                _write(pending)
            except Exception:
                logger.exception("writing %s buffered impression lists failed", len(pending))

    def _run(self) -> None:
        while True:
            time.sleep(0.5)
            close_old_connections()
            self.flush()


impression_writer = ImpressionWriter()


def impressions_write(rows: list[Impression] | ImpressionBatch, *, trace: TraceDraft | None = None) -> None:
    """Write one list's impressions (model instances, or a served list's ImpressionBatch) and, with a
    draft and RECSITE_TRACE_RECORD on, its decision trace: inline, or through the buffered writer when
    RECSITE_IMPRESSIONS_ASYNC."""
    if not rows:
        return
    if trace is not None and not trace_recording():
        trace = None
    if getattr(settings, "RECSITE_IMPRESSIONS_ASYNC", False):
        impression_writer.put(rows, trace)
    else:
        _write([(rows, trace)])
