"""Warm start's note of owned partitions, and which prefetched states are worth checking."""

from __future__ import annotations

from streams.domain.state import PartitionState
from streams.worker.warmstart import Prefetched, hint_path, previously_owned, remember_owned


def test_only_a_static_member_keeps_a_note_and_its_name_is_a_safe_file_name(tmp_path):
    assert hint_path(str(tmp_path), None) is None
    assert hint_path(str(tmp_path), "") is None
    note = hint_path(str(tmp_path), "worker/../a b")
    assert note is not None and note.parent == tmp_path
    assert note.name == "owned-worker_.._a_b.json"


def test_the_note_reads_back_what_was_written_and_a_rewrite_replaces_it(tmp_path):
    note = tmp_path / "sub" / "owned-w.json"
    remember_owned(note, {3, 1, 2})
    assert previously_owned(note) == [1, 2, 3]
    remember_owned(note, set())
    assert previously_owned(note) == []
    assert [p.name for p in note.parent.iterdir()] == ["owned-w.json"]  # no temporary file left


def test_a_missing_or_unreadable_note_is_no_guess(tmp_path):
    assert previously_owned(tmp_path / "none.json") == []
    for text in ("{", '{"partitions": "x"}', "[1, 2]", '{"other": [1]}', '{"partitions": [{"a": 1}]}'):
        (tmp_path / "bad.json").write_text(text)
        assert previously_owned(tmp_path / "bad.json") == [], text


def test_candidates_are_the_assigned_partitions_prefetched_with_a_last_record():
    prefetched = Prefetched(
        states={0: PartitionState(0), 1: PartitionState(1), 2: PartitionState(2)},
        last={0: (9, b"p:0", b"v"), 2: (4, b"p:2", b"w"), 5: (1, b"p:5", b"x")},
    )
    # 1 has no record (an empty changelog partition: nothing to reuse), 3 was not prefetched,
    # 5 has a last record but no state.
    assert prefetched.candidates({0, 1, 3, 5}) == {0: (9, b"p:0", b"v")}
    assert prefetched.candidates(set()) == {}
