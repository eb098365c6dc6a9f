"""lists: the wsj0-2mix mixture-list side (comments, BOM, line numbers, ids, errors, writing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepclust.corpus import lists
from deepclust.corpus.lists import ListFormatError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_hash_in_a_file_name_is_kept_after_white_space_is_a_comment(tmp_path: Path):
    path = _write(tmp_path / "mix.txt", "take#2/a.wav 1.5 b#c.wav -1.5 # louder first\n#whole line\n")
    (line,) = lists.read_mixture_list(path)
    assert line.sources == (tmp_path / "take#2" / "a.wav", tmp_path / "b#c.wav")
    assert line.gains_db == (1.5, -1.5)
    assert line.id == "a_1.5_b#c_-1.5" and line.where == f"{path}:1"


def test_bom_and_crlf_keep_line_numbers(tmp_path: Path):
    path = _write(tmp_path / "mix.txt", "# header\r\na.wav 0 b.wav 0\r\n\r\n/abs/c.wav 2 d.wav -2\r\n", "utf-8-sig")
    first, second = lists.read_mixture_list(path)
    assert first.sources[0] == tmp_path / "a.wav"  # the BOM is not part of the first field
    assert first.where.endswith(":2") and second.where.endswith(":4")
    assert second.sources == (Path("/abs/c.wav"), tmp_path / "d.wav")  # absolute paths stay absolute
    bom_first = _write(tmp_path / "bom.txt", "a.wav 0 b.wav 0\n", "utf-8-sig")
    assert lists.read_mixture_list(bom_first)[0].sources[0] == tmp_path / "a.wav"


def test_three_sources_and_repeated_lines_get_distinct_ids(tmp_path: Path):
    path = _write(tmp_path / "mix.txt", "a.wav 0 b.wav 1 c.wav -1\na.wav 0 b.wav 1 c.wav -1\n")
    first, second = lists.read_mixture_list(path)
    assert len(first.sources) == 3 and first.gains_db == (0.0, 1.0, -1.0)
    assert first.id == "a_0_b_1_c_-1" and second.id == "a_0_b_1_c_-1@2"


@pytest.mark.parametrize("line, problem", [
    ("a.wav 0 b.wav", "3 fields"),
    ("a.wav 0", "2 fields"),
    ("a.wav zero b.wav 0", "gains ['zero', '0']"),
    ("a.wav nan b.wav 0", "finite gains"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str):
    path = _write(tmp_path / "mix.txt", "a.wav 0 b.wav 0\r\n\r\n" + line + "\r\n")
    with pytest.raises(ListFormatError) as info:
        lists.read_mixture_list(path)
    assert f"{path}:3: expected" in str(info.value) and problem in str(info.value)


def test_missing_and_empty_lists(tmp_path: Path):
    with pytest.raises(ListFormatError, match=r"nowhere.txt: list file not found.*path1 gain_dB"):
        lists.read_mixture_list(tmp_path / "nowhere.txt")
    with pytest.raises(ListFormatError, match="no mixtures in the list"):
        lists.read_mixture_list(_write(tmp_path / "empty.txt", "# only a comment\n\n"))
    assert issubclass(ListFormatError, ValueError)


def test_written_mixture_list_reads_back(tmp_path: Path):
    path = lists.write_mixture_list(tmp_path / "out" / "mix.txt",
                                    [(["wav/a.wav", "wav/b.wav"], [1.5, -1.5])], header="test list")
    assert path.read_text().splitlines()[0] == "# test list"
    (line,) = lists.read_mixture_list(path)
    assert line.sources == (tmp_path / "out" / "wav" / "a.wav", tmp_path / "out" / "wav" / "b.wav")
    assert line.gains_db == (1.5, -1.5) and line.where.endswith(":2")
