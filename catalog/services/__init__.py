"""Catalog writes. Each module holds one area; the public names are re-exported here.

Import as `from catalog.services import events_record`.
"""
from .events import EventResult, EventsRecordResult, events_record  # noqa: F401
