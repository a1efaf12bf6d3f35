"""`python manage.py simulate (--experiment SLUG | --scenario NAME) [--customers N] [--products M] [--steps T]
[--runs R] [--seed S] [--out report.json]`

Plays a simulated A/B experiment through the storefront's own serving and event-ingestion code, in a
throw-away SQLite database (never the shop's own database; see experiments.simulation), and prints the
study's tables. One time step is one simulated hour (the default 1,000 steps are about 42 days).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from experiments.simulation import ArmSpec, Scenario, scenario_get, simulation_run
from experiments.simulator.ab import fmt_table

LIMITS = {"customers": (10, 1_000_000), "products": (20, 100_000), "steps": (1, 100_000), "runs": (1, 100)}


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _num(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _p(x) -> str:
    return "-" if x is None else (f"{x:.3g}" if x >= 1e-4 else "<0.0001")


class Command(BaseCommand):
    help = "Simulate an A/B experiment with simulated shoppers going through the real serving path."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--experiment", metavar="SLUG", help="Simulate a copy of this experiment's variants."
        )
        group.add_argument(
            "--scenario", metavar="NAME", help="aa (A/A test) or paper-2025 (reference study)."
        )
        parser.add_argument("--customers", type=int, default=10_000)
        parser.add_argument("--products", type=int, default=500)
        parser.add_argument("--steps", type=int, default=1000, help="Hourly time steps (default 1000).")
        parser.add_argument("--runs", type=int, default=1)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--history-days",
            type=int,
            default=14,
            help="Days of pre-experiment shop history (training data).",
        )
        parser.add_argument("--epsilon", type=float, default=0.1, help="The AI arm's exploration rate.")
        parser.add_argument("--out", metavar="PATH", help="Write the JSON report here.")
        parser.add_argument(
            "--keep-db", action="store_true", help="Keep the throw-away database (path printed)."
        )
        parser.add_argument("--no-progress", action="store_true")

    def _check(self, options) -> None:
        if not options["experiment"] and not options["scenario"]:
            raise CommandError("Give --scenario NAME (aa or paper-2025) or --experiment SLUG.")
        for name, (lo, hi) in LIMITS.items():
            v = options[name]
            if not lo <= v <= hi:
                raise CommandError(f"--{name} must be between {lo:,} and {hi:,}; got {v:,}.")
        if not 1 <= options["history_days"] <= 365:
            raise CommandError(f"--history-days must be between 1 and 365; got {options['history_days']}.")
        if not 0 <= options["epsilon"] < 0.5:
            raise CommandError(f"--epsilon must be in [0, 0.5); got {options['epsilon']}.")
        if options["out"]:
            parent = Path(options["out"]).expanduser().resolve().parent
            if not parent.is_dir():
                raise CommandError(f"--out: directory {parent} does not exist.")

    def _from_experiment(self, slug: str) -> tuple[Scenario, dict]:
        from experiments.models import Experiment
        from experiments.services import experiment_validate

        exp = Experiment.objects.filter(slug=slug).prefetch_related("variants", "widgets").first()
        if exp is None:
            known = list(Experiment.objects.order_by("slug").values_list("slug", flat=True)[:20])
            raise CommandError(
                f"Unknown experiment {slug!r}. Known experiments: {', '.join(known) if known else 'none yet'}."
            )
        variants = list(exp.variants.all())
        try:
            experiment_validate(
                experiment=exp, variants=variants, widget_ids=[w.pk for w in exp.widgets.all()]
            )
        except Exception as exc:  # ValidationError
            msgs = getattr(exc, "messages", [str(exc)])
            if not any("already in running experiment" in m for m in msgs) or len(msgs) > 1:
                raise CommandError("This experiment cannot run: " + " ".join(msgs)) from None
        widget = exp.widgets.first()
        arms = tuple(
            ArmSpec(
                v.name,
                v.is_control,
                v.weight,
                v.strategy,
                v.engine,
                dict(v.params or {}),
                tuple(v.rules or ()),
            )
            for v in variants
        )
        control = next(v.name for v in variants if v.is_control)
        treatment = next(v.name for v in variants if not v.is_control)
        engines = {"pop"}
        from recommender.strategies import strategy_engine

        for s in {widget.strategy} | {v.strategy for v in variants if v.strategy}:
            e = strategy_engine(s)
            if s in ("epsilon_greedy", "thompson", "linucb"):
                e = strategy_engine("personalized")
            if e:
                engines.add(e)
        scenario = Scenario(
            name=f"experiment:{slug}",
            description=exp.hypothesis or exp.name,
            arms=arms,
            widget_strategy=widget.strategy,
            engines=tuple(sorted(engines)),
            control=control,
            treatment=treatment,
            primary_metric=exp.primary_metric,
        )
        return scenario, {
            "slug": exp.slug,
            "name": exp.name,
            "hypothesis": exp.hypothesis,
            "primary_metric": exp.primary_metric,
        }

    def handle(self, *args, **options) -> None:
        self._check(options)
        source = None
        if options["experiment"]:
            scenario, source = self._from_experiment(options["experiment"])
        else:
            try:
                scenario = scenario_get(options["scenario"], epsilon=options["epsilon"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        quiet = options["no_progress"]

        def progress(total: int, desc: str):
            return tqdm(total=total, desc=desc, unit="visit", disable=quiet, mininterval=1.0)

        report = simulation_run(
            scenario=scenario,
            customers=options["customers"],
            products=options["products"],
            steps=options["steps"],
            runs=options["runs"],
            seed=options["seed"],
            history_days=options["history_days"],
            progress=progress,
            say=lambda s: self.stdout.write(s),
            keep=options["keep_db"],
            source_experiment=source,
        )
        self.stdout.write(report_markdown(report))
        if options["out"]:
            Path(options["out"]).expanduser().write_text(json.dumps(report, indent=2))
            self.stdout.write(f"Report written to {options['out']}")


def report_markdown(report: dict) -> str:
    """Tables 1-4 (and the OPE check when there is one) as Markdown."""
    arms, tests = report["arms"], report["tests"]
    c, t = report["control"], report["treatment"]
    out = [f"## Simulation `{report['scenario']}`", "", report["description"], ""]
    metrics = [
        ("conversion_rate", "Conversion rate", True),
        ("aov", "AOV ($)", False),
        ("ctr", "CTR", True),
        ("session_duration", "Session duration (s)", False),
    ]
    rows = []
    for m, label, pct in metrics:

        def cell(arm, m=m, pct=pct):
            a = arms[arm][m]
            return f"{_pct(a['mean'])} ± {_pct(a['sd'])}" if pct else f"{_num(a['mean'])} ± {_num(a['sd'])}"

        rows.append([label, cell(c), cell(t), _p(tests[m]["p"])])
    out += [
        "Table 1 - mean ± SD per arm (SD over sessions / lists / orders)",
        "",
        fmt_table(["Metric", c, t, "p"], rows),
        "",
    ]
    rows = [
        [label, _num(tests[m]["t"]), _num(tests[m]["df"], "{:.0f}"), _p(tests[m]["p"])]
        for m, label, _ in metrics
    ]
    out += ["Table 2 - Welch's t-test, " + f"{t} vs {c}", "", fmt_table(["Metric", "t", "df", "p"], rows), ""]
    if report.get("sensitivity"):
        rows = []
        for eps, s in report["sensitivity"].items():
            rows.append(
                [
                    eps,
                    s["arm"],
                    _pct(s["conversion_rate"]["mean"]),
                    _num(s["aov"]["mean"]),
                    _p(s["vs_control"]["conversion_rate"]["p"]),
                    _p(s["vs_control"]["aov"]["p"]),
                ]
            )
        out += [
            "Table 3 - sensitivity to the exploration rate (epsilon)",
            "",
            fmt_table(
                ["epsilon", "arm", "conversion", "AOV ($)", "p conv. vs control", "p AOV vs control"], rows
            ),
            "",
        ]
    rows = []
    for run in report["runs"]:
        for arm, v in run["arms"].items():
            rows.append(
                [
                    str(run["run"]),
                    str(run["seed"]),
                    arm,
                    f"{int(v['sessions']):,}",
                    _pct(v["conversion_rate"]),
                    _num(v["aov"]),
                    _pct(v["ctr"]),
                    _num(v["session_duration"], "{:.0f}"),
                ]
            )
    out += [
        "Table 4 - each run",
        "",
        fmt_table(["run", "seed", "arm", "sessions", "conversion", "AOV ($)", "CTR", "session (s)"], rows),
        "",
    ]
    if report.get("ope"):
        rows = [
            [
                f"{o['logged_epsilon']:g}",
                f"{o['candidate_epsilon']:g}",
                _pct(o["snips"]),
                _pct(o["snips_se"] and 1.96 * o["snips_se"]),
                _pct(o["ips"]),
                _pct(o["dr"]),
                _pct(o["actual_item_ctr"]),
                f"{o['n']:,}",
            ]
            for o in report["ope"]
        ]
        out += [
            "Off-policy estimate vs simulated item CTR",
            "",
            fmt_table(
                ["logged eps", "candidate eps", "SNIPS", "±95%", "IPS", "DR", "simulated", "n logged"], rows
            ),
            "",
        ]
    for run in report["runs"]:
        out.append(f"Run {run['run']} database analysis: {run['db_analysis']['verdict']}")
    out.append(f"Config: {json.dumps(report['config'])}")
    return "\n".join(out)
