"""The speaker-disjoint split prepare and the demo corpus share: sizes, dealing, and lists not overwritten."""

from __future__ import annotations

import pytest

from deepclust.corpus.split import SPLITS, CorpusError, deal, refuse_existing_lists, split_sizes


@pytest.mark.parametrize("valid, test", [(0.0, 0.0), (0.1, 0.1), (0.15, 0.15), (0.45, 0.5)])
@pytest.mark.parametrize("min_test", [1, 2])
def test_split_sizes_cover_every_speaker_with_each_split_used(valid, test, min_test):
    for count in range(2 + min_test, 60):
        sizes = split_sizes(count, valid, test, min_test=min_test)
        assert sum(sizes.values()) == count
        assert sizes["train"] >= 1 and sizes["valid"] >= 1 and sizes["test"] >= min_test
    big = split_sizes(1000, valid, test, min_test=min_test)  # no rounding squeeze: the fractions hold
    assert big["valid"] == max(1, round(valid * 1000)) and big["test"] == max(min_test, round(test * 1000))


def test_split_sizes_refuse_bad_fractions():
    with pytest.raises(CorpusError, match=r"\[0, 1\)\. Received: valid_fraction=-0.1"):
        split_sizes(10, -0.1, 0.1)
    with pytest.raises(CorpusError, match=r"sum < 1.*Received: valid_fraction=0.5, test_fraction=0.5"):
        split_sizes(10, 0.5, 0.5)


def test_deal_hands_out_consecutive_runs():
    assert deal(list("abcdef"), {"train": 3, "valid": 1, "test": 2}) == {
        "train": ["a", "b", "c"], "valid": ["d"], "test": ["e", "f"]}


def test_deal_keeps_the_order_it_is_given_within_each_split():
    order = [5, 3, 9, 1, 7]
    dealt = deal(order, split_sizes(len(order), 0.2, 0.2))
    assert [x for split in SPLITS for x in dealt[split]] == order


def test_existing_lists_are_refused_unless_overwriting(tmp_path):
    refuse_existing_lists(tmp_path, overwrite=False)  # none yet
    (tmp_path / "valid").write_text("a.wav spk\n")
    with pytest.raises(FileExistsError, match=r"valid: a list already exists.*--force"):
        refuse_existing_lists(tmp_path, overwrite=False)
    refuse_existing_lists(tmp_path, overwrite=True)
