import json

import numpy as np
import pytest

from recommender.evaluation.importers import (
    DatasetFormatError,
    dataset_load,
    format_guess,
    recbole_load,
    sequences_load,
    sessions_load,
)


def test_sequence_file_with_attributes(tmp_path):
    path = tmp_path / "Toy.txt"
    path.write_text("1 10 20 10 30\n2 20 30\n3 30 10 40\n")
    (tmp_path / "Toy_item2attributes.json").write_text(
        json.dumps({"10": [1, 2], "20": [2], "40": [3], "99": [4]})
    )
    ds = sequences_load(path)
    d = ds.data
    assert ds.name == "Toy" and ds.format == "seq"
    assert d.item_ids.tolist() == ["10", "20", "30", "40"]
    assert d.user_ids.tolist() == ["1", "2", "3"]
    assert [s.tolist() for s in d.sequences] == [[0, 1, 0, 2], [1, 2], [2, 0, 3]]
    assert d.matrix.toarray().tolist() == [[1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 1, 1]]  # binary, repeats once
    attrs = d.item_features.attributes.toarray()
    # attribute vocabulary 1,2,3,4 -> columns 0..3; item 30 has none; item 99 is not in the interactions
    assert attrs.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_sequence_file_without_attributes_and_errors(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("a x y\nb y\n")
    ds = sequences_load(path)
    assert ds.data.item_features.attributes is None
    bad = tmp_path / "bad.txt"
    bad.write_text("1 10 20\n2\n")
    with pytest.raises(DatasetFormatError, match="bad.txt:2"):
        sequences_load(bad)
    dup = tmp_path / "dup.txt"
    dup.write_text("1 10\n1 20\n")
    with pytest.raises(DatasetFormatError, match="more than one line"):
        sequences_load(dup)
    with pytest.raises(FileNotFoundError):
        sequences_load(tmp_path / "missing.txt")


def _write_recbole(folder):
    folder.mkdir()
    (folder / "mini.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t100\t5\t30\n1\t200\t3\t10\n1\t300\t4\t20\n2\t200\t4\t5\n2\t100\t1\t6\n"
    )
    (folder / "mini.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "100\tToy Story\t1995\tAnimation Comedy\n200\tHeat\t1995\tAction Crime\n300\tAlien\t1979\tHorror\n"
    )
    (folder / "mini.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\tstudent\t1\n2\t53\tF\tother\t2\n"
    )


def test_recbole_files(tmp_path):
    _write_recbole(tmp_path / "mini")
    ds = recbole_load(tmp_path / "mini")
    d = ds.data
    assert d.item_ids.tolist() == ["100", "200", "300"]
    # user 1 ordered by timestamp: 200 (10), 300 (20), 100 (30)
    assert [s.tolist() for s in d.sequences] == [[1, 2, 0], [1, 0]]
    assert [t.tolist() for t in d.timestamps] == [[10, 20, 30], [5, 6]]
    f = d.item_features
    assert f.texts[0] == "Toy Story 1995 Animation Comedy"
    assert f.category.tolist() == [1, 0, 2]  # first genre: Animation, Action, Horror (sorted index)
    assert f.attributes.shape[0] == 3 and f.attributes[2].nnz == 2  # genre=Horror, decade=1970s
    assert d.user_groups["gender"].tolist() == ["M", "F"]
    assert d.user_groups["age_group"].tolist() == ["18-24", "50-55"]
    assert format_guess(tmp_path / "mini") == "recbole"
    assert dataset_load(tmp_path / "mini" / "mini.inter").data.n_users == 2


def test_recbole_errors(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "x.inter").write_text("uid:token\titem:token\n1\t2\n")
    with pytest.raises(DatasetFormatError, match="user_id and item_id"):
        recbole_load(folder)
    (folder / "x.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tyesterday\n")
    with pytest.raises(DatasetFormatError, match="timestamp"):
        recbole_load(folder / "x.inter")


def test_session_files(tmp_path):
    (tmp_path / "clicks_train_full.txt").write_text(
        "SessionId\tItemId\tTime\n2\t7\t100.0\n1\t5\t10.0\n1\t6\t11.0\n2\t8\t101.0\n1\t5\t12.0\n"
    )
    (tmp_path / "clicks_test.txt").write_text(
        "SessionId\tItemId\tTime\n9\t5\t200\n9\t99\t201\n9\t6\t202\n10\t7\t300\n11\t99\t400\n11\t8\t401\n"
    )
    ds = sessions_load(tmp_path)
    d = ds.data
    assert ds.name == "clicks" and ds.format == "session"
    assert d.item_ids.tolist() == ["5", "6", "7", "8"]
    assert d.user_ids.tolist() == ["1", "2"]  # sessions ordered by start time
    assert [s.tolist() for s in d.sequences] == [[0, 1, 0], [2, 3]]
    assert [s.tolist() for s in d.sessions] == [[0, 1, 0], [2, 3]]
    # test: unknown item 99 dropped; sessions shorter than 2 clicks after that dropped
    assert [s.tolist() for s in ds.test_sessions] == [[0, 1]]
    assert ds.test_session_ids.tolist() == ["9"]
    assert format_guess(tmp_path / "clicks_test.txt") == "session"
    assert sessions_load(tmp_path / "clicks_test.txt").data.n_users == 2


def test_session_header_and_dataset_load_errors(tmp_path):
    (tmp_path / "s_train_full.txt").write_text("a\tb\tc\n1\t2\t3\n")
    with pytest.raises(DatasetFormatError, match="SessionId"):
        sessions_load(tmp_path / "s_train_full.txt")
    with pytest.raises(ValueError, match="unknown dataset format"):
        dataset_load(tmp_path / "s_train_full.txt", "csv")
    with pytest.raises(FileNotFoundError):
        dataset_load(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    "path,rows",
    [("amazon-beauty/Beauty.txt", 22363), ("movielens-100k", 943), ("yoochoose-clicks-100k", None)],
)
def test_shared_datasets_load(path, rows):
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    if not (root / path).exists():
        pytest.skip("shared datasets not present")
    ds = dataset_load(root / path)
    if rows is not None:
        assert ds.data.n_users == rows
    if path.startswith("amazon"):
        assert ds.data.n_items == 12101 and ds.data.matrix.sum() > 0
        assert sum(len(s) for s in ds.data.sequences) == 198502
        assert ds.data.item_features.attributes.shape == (12101, 637)
    if path.startswith("yoochoose"):
        assert ds.data.n_items == 2933 and len(ds.test_sessions) > 0
    assert np.all(np.diff(ds.data.matrix.indptr) >= 0)
