"""`python manage.py evaluate --dataset PATH [--format seq|recbole|session|db] [--models a,b,c]
[--predictions-dir DIR] [--out report.json] [--seed S]`: offline evaluation of the engines.

A thin adapter over `recommender.evaluation` (importers -> protocol -> runner).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

PROTOCOLS = ("default", "loo", "temporal", "temporal-user", "session")


class Command(BaseCommand):
    help = (
        "Train each engine on the training part of a dataset, tune its hyperparameters on validation, and "
        "report test metrics (HR/NDCG/MRR/precision/recall/F1/MAP at 5/10/20, AUC, coverage, novelty, "
        "diversity, popularity bias, cold-user/cold-item slices, group gaps). Default protocol: leave-one-out "
        "for seq/recbole, next-click for session files, a global temporal split for the shop's events (db)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", help="Dataset file or folder (not needed with --format db).")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=["seq", "recbole", "session", "db"],
            default=None,
            help="Dataset format (guessed from the path when omitted; 'db' reads the shop's own events).",
        )
        parser.add_argument(
            "--models", default=None, help="Comma-separated engine names (default: all that apply)."
        )
        parser.add_argument(
            "--predictions-dir",
            default=None,
            help="Write <engine>.tsv here: per test user, USER_ID<TAB>top-20 item ids (session data: one line "
            "per test-session prefix, id SESSION:PREFIX_LENGTH).",
        )
        parser.add_argument("--out", default=None, help="Write the full report as JSON to this file.")
        parser.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
        parser.add_argument(
            "--protocol", choices=PROTOCOLS, default="default", help="Override the split protocol."
        )
        parser.add_argument("--no-tune", action="store_true", help="Use each engine's defaults; skip tuning.")
        parser.add_argument(
            "--tune-max-cases",
            type=int,
            default=None,
            help="Tune on a random sample of this many validation cases.",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")

    def handle(self, *args, **opts):
        from recommender.engines import REGISTRY
        from recommender.evaluation.runner import engine_applies

        fmt = opts["fmt"]
        seed = opts["seed"]
        if opts["tune_max_cases"] is not None and opts["tune_max_cases"] < 1:
            raise CommandError("--tune-max-cases must be at least 1.")
        dataset = self._dataset(opts["dataset"], fmt)
        split = self._split(dataset, opts["protocol"])
        if not len(split.test):
            raise CommandError(
                f"The {split.protocol} split of {dataset.name!r} has no test cases; nothing to evaluate."
            )
        self.stdout.write(
            f"{dataset.name}: {dataset.data.n_users} users, {dataset.data.n_items} items, "
            f"{dataset.data.matrix.nnz} interactions; protocol {split.protocol}: "
            f"{len(split.valid)} validation / {len(split.test)} test cases"
        )

        if opts["models"]:
            names = [n.strip() for n in opts["models"].split(",") if n.strip()]
            if not names:
                raise CommandError("--models is empty; give engine names separated by commas.")
            unknown = [n for n in names if n not in REGISTRY]
            if unknown:
                raise CommandError(
                    f"Unknown model(s): {', '.join(unknown)}. Known engines: {', '.join(sorted(REGISTRY))}."
                )
            for n in names:
                reason = engine_applies(n, split.train)
                if reason:
                    raise CommandError(f"Engine {n!r} cannot run on this dataset: {reason}.")
        else:
            names = []
            for n in REGISTRY:
                reason = engine_applies(n, split.train)
                if reason:
                    self.stdout.write(self.style.WARNING(f"skipping {n}: {reason}"))
                else:
                    names.append(n)
            if not names:
                raise CommandError("No registered engine applies to this dataset.")

        pred_dir = Path(opts["predictions_dir"]) if opts["predictions_dir"] else None
        if pred_dir is not None:
            try:
                pred_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CommandError(f"Cannot create --predictions-dir {pred_dir}: {exc}") from exc
        out = Path(opts["out"]) if opts["out"] else None
        if out is not None and not out.parent.exists():
            raise CommandError(f"The folder for --out does not exist: {out.parent}")

        reports, failed = self._run(names, split, opts, pred_dir, seed)
        self._print(reports, split)
        if out is not None:
            payload = {
                "dataset": dataset.name,
                "format": dataset.format,
                "protocol": split.protocol,
                "protocol_notes": split.notes,
                "seed": seed,
                "n_users": dataset.data.n_users,
                "n_items": dataset.data.n_items,
                "n_valid_cases": len(split.valid),
                "n_test_cases": len(split.test),
                "reports": [r.to_dict() for r in reports],
                "failed": failed,
            }
            out.write_text(json.dumps(payload, indent=2))
            self.stdout.write(f"report written to {out}")
        if pred_dir is not None and reports:
            self.stdout.write(f"predictions written to {pred_dir}/<engine>.tsv")
        if failed:
            raise CommandError("Some engines failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))

    # ------------------------------------------------------------------------------------------------

    def _dataset(self, path_arg, fmt):
        from recommender.evaluation.importers import Dataset, DatasetFormatError, dataset_load

        if fmt == "db":
            try:
                from recommender.data import interaction_data_from_events
            except ImportError as exc:
                raise CommandError(f"--format db is not available yet ({exc}).") from exc
            shop = interaction_data_from_events()
            if shop.data.matrix.nnz == 0:
                raise CommandError("The shop has no product events yet; nothing to evaluate (--format db).")
            if shop.data.timestamps is None:
                raise CommandError("The shop's events carry no timestamps; cannot build a temporal split.")
            return Dataset(name="shop-events", format="db", data=shop.data)
        if not path_arg:
            raise CommandError("--dataset PATH is required (or use --format db for the shop's own events).")
        path = Path(path_arg)
        if not path.exists():
            raise CommandError(f"Dataset not found: {path}")
        try:
            return dataset_load(path, fmt)
        except (
            DatasetFormatError,
            FileNotFoundError,
            ValueError,
            UnicodeDecodeError,
            json.JSONDecodeError,
        ) as exc:
            raise CommandError(f"Cannot read {path} as {fmt or 'an auto-detected format'}: {exc}") from exc

    def _split(self, dataset, protocol):
        from recommender.evaluation.protocols import (
            leave_one_out_split,
            session_next_click_split,
            split_default,
            temporal_split,
        )

        try:
            if protocol == "default":
                return split_default(dataset)
            if protocol == "loo":
                return leave_one_out_split(dataset.data, dataset=dataset.name)
            if protocol in ("temporal", "temporal-user"):
                mode = "global" if protocol == "temporal" else "user"
                return temporal_split(dataset.data, mode=mode, dataset=dataset.name)
            return session_next_click_split(dataset)
        except ValueError as exc:
            raise CommandError(f"Protocol {protocol!r} does not fit this dataset: {exc}") from exc

    def _run(self, names, split, opts, pred_dir, seed):
        from recommender.evaluation.runner import evaluate_engine

        reports, failed = [], {}
        for n in names:
            self.stdout.write(f"== {n}")
            try:
                r = evaluate_engine(
                    n,
                    split,
                    tune=not opts["no_tune"],
                    tune_max_cases=opts["tune_max_cases"],
                    seed=seed,
                    progress=not opts["no_progress"] and os.environ.get("TQDM_DISABLE") != "1",
                    predictions_path=(pred_dir / f"{n}.tsv") if pred_dir is not None else None,
                )
            except MemoryError:
                failed[n] = "out of memory"
                self.stderr.write(f"{n} failed: out of memory")
                continue
            except Exception as exc:  # one engine's failure must not lose the others' results
                failed[n] = f"{type(exc).__name__}: {exc}"
                self.stderr.write(f"{n} failed: {failed[n]}")
                continue
            reports.append(r)
            self.stdout.write(
                f"   NDCG@10 {r.metrics['NDCG@10']:.4f}  HR@10 {r.metrics['HR@10']:.4f}  "
                f"fit {r.fit_seconds:.1f}s  tune {r.tune_seconds:.1f}s  params {r.params}"
            )
        return reports, failed

    def _print(self, reports, split):
        from recommender.evaluation.runner import report_table

        if not reports:
            return
        self.stdout.write("")
        self.stdout.write(report_table(reports, extra=("MRR@10", "precision@10", "recall@10", "AUC")))
        gaps = {r.engine: r.gaps for r in reports if r.gaps}
        if gaps:
            self.stdout.write("group NDCG@10 gaps: " + json.dumps(gaps))
