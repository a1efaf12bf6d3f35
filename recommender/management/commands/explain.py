"""`manage.py explain --customer EXTERNAL_ID --widget SLUG [--impression ID] [--json]`: why a customer was
(or would now be) shown each item of a widget: the same explained decision trace the support console shows.

Without --impression it serves the widget for the customer now (no impression or trace is logged) and
explains that list; with it, it explains the stored trace of the list that impression belonged to. The
default output is a text table; --json prints `trace_explain(...).as_json()`.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.support.selectors import ShopperNotFound, customer_trace_get


class Command(BaseCommand):
    help = (
        "Explain the recommendations a customer was shown (--impression) or would be shown now in a widget."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customer", required=True, help="the customer's external id")
        parser.add_argument("--widget", required=True, help="the widget's slug")
        parser.add_argument(
            "--impression", default="", help="an impression id of a list shown to the customer"
        )
        parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
        parser.add_argument(
            "--top", type=int, default=5, help="contributions per item in the text table (1-50)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from recommender.explanations import trace_explain

        top = options["top"]
        if not 1 <= top <= 50:
            raise CommandError(f"--top must be from 1 to 50 (got {top}).")
        try:
            trace = customer_trace_get(
                customer_external_id=options["customer"].strip(),
                widget_slug=options["widget"].strip(),
                impression_id=options["impression"].strip(),
            )
        except ShopperNotFound as exc:
            raise CommandError(str(exc)) from exc
        data = trace_explain(trace=trace).as_json()
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=False))
            return
        self.stdout.write(_text(data, top=top, now=not options["impression"]))


def _num(v: Any, fmt: str = ".4f") -> str:
    return "—" if v is None else format(v, fmt)


def _text(data: dict[str, Any], *, top: int, now: bool) -> str:
    versions = ", ".join(f"{m['engine']} v{m['version']}" for m in data["model_versions"]) or "none"
    lines = [
        f"Widget {data['widget']} ({data['strategy']}), "
        + ("what the customer would see now" if now else f"request {data['request_id']}"),
        f"Model versions: {versions}"
        + (f"; experiment {data['experiment']}/{data['variant']}" if data.get("experiment") else "")
        + (f"; fallbacks: {', '.join(data['fallbacks'])}" if data.get("fallbacks") else ""),
    ]
    if data.get("history"):
        recent = ", ".join(f"{h['event'] or 'item'} {h['sku']}" for h in data["history"][-8:])
        lines.append(f"History (oldest first, last 8): {recent}")
    for w in data.get("warnings", ()):
        lines.append(f"Warning: {w}")
    header = f"{'pos':>3}  {'sku':<14} {'score':>10} {'base':>10}  {'kind':<20} contributions"
    for title, items in (("Shown", data["items"]), ("Removed by rules", data["removed"])):
        if not items:
            continue
        lines += ["", f"{title}:", header]
        for it in items:
            pos = "-" if it["position"] is None else str(it["position"] + 1)
            contribs = (
                "; ".join(f"{c['name']} {_num(c['value'], '+.4f')}" for c in it["contributions"][:top])
                or "(none)"
            )
            more = len(it["contributions"]) - top
            lines.append(
                f"{pos:>3}  {it['sku'][:14]:<14} {_num(it['score']):>10} {_num(it['base_value']):>10}  "
                f"{(it['score_kind'] or '')[:20]:<20} {contribs}{f' (+{more} more)' if more > 0 else ''}"
            )
            extra = []
            if it.get("sources"):
                extra.append("sources: " + ", ".join(f"{s['source']} #{s['rank']}" for s in it["sources"]))
            if it.get("rules"):
                extra.append("rules: " + ", ".join(f"{r['label']} ({r['effect']})" for r in it["rules"]))
            if it.get("removed_by"):
                extra.append(f"removed by {it['removed_by']}")
            if it.get("summary"):
                extra.append(it["summary"])
            for e in extra:
                lines.append(f"{'':>5}{e}")
    return "\n".join(lines)
