import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.fixture
def seq_file(tmp_path):
    """A tiny sequence dataset: 'A then B' pairs over 60 items, ids offset so they differ from indices."""
    rng = np.random.default_rng(1)
    lines = []
    for u in range(80):
        pairs = rng.choice(15, 3, replace=False)
        noise = rng.choice(np.arange(30, 60), 2, replace=False)
        seq = [x for p in pairs for x in (2 * p, 2 * p + 1)] + list(noise)
        rng.shuffle(seq)
        lines.append(f"u{u} " + " ".join(str(1000 + int(i)) for i in seq))
    path = tmp_path / "Tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "Tiny_item2attributes.json").write_text(
        json.dumps({str(1000 + i): [i % 5] for i in range(60)})
    )
    return path


def test_evaluate_end_to_end(seq_file, tmp_path, capsys):
    out = tmp_path / "report.json"
    preds = tmp_path / "preds"
    call_command(
        "evaluate",
        dataset=str(seq_file),
        models="pop,itemknn,content",
        predictions_dir=str(preds),
        out=str(out),
        seed=3,
        no_progress=True,
    )
    printed = capsys.readouterr().out
    assert "| pop |" in printed and "| itemknn |" in printed and "| content |" in printed
    report = json.loads(out.read_text())
    assert report["protocol"] == "leave_one_out" and report["n_test_cases"] == 80 and report["seed"] == 3
    by_name = {r["engine"]: r for r in report["reports"]}
    assert set(by_name) == {"pop", "itemknn", "content"}
    for r in by_name.values():
        assert {"HR@10", "NDCG@10", "AUC", "coverage@10", "popularity_bias@10"} <= set(r["metrics"])
        assert r["params"]  # chosen hyperparameters recorded
    assert by_name["pop"]["tuning"] == []  # no timestamps: nothing to tune for popularity
    assert len(by_name["itemknn"]["tuning"]) > 1 and len(by_name["content"]["tuning"]) > 1
    # predictions: one line per user, top-20 in the dataset's own ids, history excluded
    histories = {line.split()[0]: line.split()[1:-1] for line in seq_file.read_text().splitlines()}
    for name in ("pop", "itemknn", "content"):
        lines = (preds / f"{name}.tsv").read_text().splitlines()
        assert len(lines) == 80
        for line in lines:
            uid, items = line.split("\t")
            ids = items.split()
            assert len(ids) == 20 and len(set(ids)) == 20
            assert all(i.startswith("1") and len(i) == 4 for i in ids)
            assert not set(ids) & set(histories[uid])


def test_evaluate_all_applicable_engines_prints_skips(seq_file, capsys, monkeypatch):
    from recommender import engines

    # only cheap engines plus one that cannot be imported
    monkeypatch.setattr(
        engines,
        "REGISTRY",
        {"pop": engines.REGISTRY["pop"], "ghost": "recommender.engines.does_not_exist:Ghost"},
    )
    call_command("evaluate", dataset=str(seq_file), no_progress=True, no_tune=True)
    printed = capsys.readouterr().out
    assert "skipping ghost: not importable" in printed
    assert "| pop |" in printed


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dataset": "/no/such/file.txt"}, "Dataset not found"),
        ({}, "--dataset PATH is required"),
        ({"models": "pop,nosuch"}, "Unknown model"),
        ({"models": " , "}, "--models is empty"),
        ({"fmt": "recbole"}, "Cannot read"),
        ({"protocol": "temporal"}, "timestamps"),
        ({"tune_max_cases": 0}, "--tune-max-cases"),
    ],
)
def test_evaluate_bad_arguments(seq_file, kwargs, message):
    opts = {"dataset": str(seq_file), "no_progress": True, **kwargs}
    if "dataset" in kwargs or kwargs == {}:
        opts = {"no_progress": True, **kwargs}
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", **opts)


def test_evaluate_unknown_format_is_rejected(seq_file):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("evaluate", "--dataset", str(seq_file), "--format", "csv")


def test_evaluate_content_needs_features(tmp_path):
    path = tmp_path / "bare.txt"
    path.write_text("1 1 2 3\n2 2 3 4\n")
    with pytest.raises(CommandError, match="cannot run on this dataset"):
        call_command("evaluate", dataset=str(path), models="content", no_progress=True)


@pytest.mark.django_db
def test_evaluate_db_without_events_is_a_clear_error():
    with pytest.raises(CommandError, match="no product events"):
        call_command("evaluate", fmt="db", models="pop", no_progress=True)


@pytest.mark.django_db
def test_evaluate_db_reads_the_shops_events(tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import CustomerFactory, EventFactory, ProductFactory

    # given: 12 customers view products in pairs (2k then 2k+1) over time; later days are the test period
    products = ProductFactory.create_batch(20)
    start = timezone.now() - timedelta(days=30)
    for c in range(12):
        customer = CustomerFactory()
        for step, p in enumerate([c % 10 * 2, c % 10 * 2 + 1, (c + 3) % 10 * 2, (c + 3) % 10 * 2 + 1]):
            EventFactory(
                customer=customer, product=products[p], timestamp=start + timedelta(days=c + 2 * step)
            )
    out = tmp_path / "db.json"
    # when
    call_command("evaluate", fmt="db", models="pop,itemknn", out=str(out), no_progress=True, no_tune=True)
    # then
    report = json.loads(out.read_text())
    assert report["format"] == "db" and report["protocol"] == "temporal_global"
    assert report["n_test_cases"] > 0
    assert {r["engine"] for r in report["reports"]} == {"pop", "itemknn"}


def test_evaluate_session_files_end_to_end(tmp_path):
    # given: clicks where item 1 always follows item 0 and 3 follows 2
    rows = ["SessionId\tItemId\tTime"]
    t = 0.0
    for s in range(60):
        a = 0 if s % 2 else 2
        for item in (a, a + 1, 5 + s % 3):
            t += 1
            rows.append(f"{s}\t{item}\t{t}")
    (tmp_path / "c_train_full.txt").write_text("\n".join(rows) + "\n")
    (tmp_path / "c_test.txt").write_text(
        "SessionId\tItemId\tTime\n900\t0\t1000\n900\t1\t1001\n901\t2\t1002\n901\t3\t1003\n"
    )
    preds = tmp_path / "p"
    out = tmp_path / "r.json"
    # when
    call_command(
        "evaluate",
        dataset=str(tmp_path),
        models="pop,itemknn",
        predictions_dir=str(preds),
        out=str(out),
        no_progress=True,
    )
    # then
    report = json.loads(out.read_text())
    assert report["format"] == "session" and report["protocol"] == "session_next_click"
    knn = next(r for r in report["reports"] if r["engine"] == "itemknn")
    assert knn["metrics"]["MRR@5"] == pytest.approx(1.0)  # both next clicks ranked first
    lines = (preds / "itemknn.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["900:1", "901:1"]
    assert lines[0].split("\t")[1].split()[0] == "1" and lines[1].split("\t")[1].split()[0] == "3"


def test_evaluate_recbole_folder_with_user_groups(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    rng = np.random.default_rng(0)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    for u in range(40):
        users.append(f"{u}\t{20 + u}\t{'MF'[u % 2]}\tother\t0")
        for j, item in enumerate(rng.choice(30, 8, replace=False)):
            inter.append(f"{u}\t{item}\t4\t{1000 * u + j}")
    (folder / "ml.inter").write_text("\n".join(inter) + "\n")
    (folder / "ml.user").write_text("\n".join(users) + "\n")
    out = tmp_path / "r.json"
    call_command(
        "evaluate",
        dataset=str(folder),
        models="pop",
        out=str(out),
        no_progress=True,
        protocol="temporal-user",
    )
    r = json.loads(out.read_text())["reports"][0]
    assert set(r["groups"]["gender"]) == {"M", "F"}
    assert "gender_NDCG@10_gap" in r["gaps"]
