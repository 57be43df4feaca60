"""The worker's registry kept parsed (`streams.worker.registrycache`): the same registry as the
YAML gives, read from the kept fields when the YAML is unchanged, refused as the YAML would be."""

import pytest

from bordermon.errors import BordermonError
from bordermon.registry import bundled_registry_text, load_registry
from streams.worker import registrycache
from streams.worker.registrycache import PREFIX, SUFFIX, load_registry_kept

ENTRY = (
    "{{id: {id}, name: {name}, region: R, lat: 1.5, lon: 2, mode: road, lanes: {{in: 2, out: 3}},"
    " lane_capacity_per_hour: 30, wait_warning_minutes: 60, wait_critical_minutes: 120,"
    " lane_groups: [{{id: cars, modes: [car, bus], lanes: {{in: 2, out: 3}}, lane_capacity_per_hour: 30}},"
    " {{id: trucks, modes: [truck], lanes: {{in: 1, out: 1}}, lane_capacity_per_hour: 5,"
    " wait_warning_minutes: 600, wait_critical_minutes: 1200}}]}}"
)


def registry_yaml(*entries: tuple[str, str]) -> str:
    return "alerting: {for_minutes: 5}\ncheckpoints:\n" + "".join(
        f"  - {ENTRY.format(id=i, name=n)}\n" for i, n in entries
    )


def kept_files(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(PREFIX))


def the_yaml_is_not_read(monkeypatch):
    def refuse(text, source):
        raise AssertionError("the YAML was read although its fields were kept")

    monkeypatch.setattr(registrycache, "registry_file", refuse)


def test_a_restart_reads_the_kept_fields_and_gets_the_same_registry(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(registry_yaml(("a", "A"), ("b", "B")))
    cache = tmp_path / "data"
    first = load_registry_kept(str(path), str(cache))
    assert len(kept_files(cache)) == 1
    the_yaml_is_not_read(monkeypatch)
    again = load_registry_kept(str(path), str(cache))
    reference = load_registry(str(path))
    assert again.source == first.source == reference.source == str(path)
    assert again.checkpoints == first.checkpoints == reference.checkpoints
    assert [g.id for g in again["b"].lane_groups] == ["cars", "trucks"]
    assert again["a"].lane_groups[1].critical_seconds == 1200 * 60.0
    assert again["a"].for_seconds == 5 * 60.0


def test_the_bundled_registry_is_kept_too(tmp_path, monkeypatch):
    monkeypatch.delenv("BORDERMON_CHECKPOINTS", raising=False)
    load_registry_kept(None, str(tmp_path))
    the_yaml_is_not_read(monkeypatch)
    assert load_registry_kept(None, str(tmp_path)).checkpoints == load_registry().checkpoints
    assert kept_files(tmp_path)[0].endswith(SUFFIX)
    assert bundled_registry_text()  # what was kept is the packaged file's


def test_a_changed_registry_is_read_again_and_replaces_the_kept_one(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(registry_yaml(("a", "A")))
    load_registry_kept(str(path), str(tmp_path / "data"))
    before = kept_files(tmp_path / "data")
    path.write_text(registry_yaml(("a", "Renamed"), ("c", "C")))
    changed = load_registry_kept(str(path), str(tmp_path / "data"))
    assert changed["a"].name == "Renamed" and "c" in changed
    after = kept_files(tmp_path / "data")
    assert len(after) == 1 and after != before


def test_damaged_kept_fields_are_read_from_the_yaml_again(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(registry_yaml(("a", "A")))
    load_registry_kept(str(path), str(tmp_path))
    (kept,) = kept_files(tmp_path)
    (tmp_path / kept).write_bytes(b"\x93not msgpack of a registry")
    assert load_registry_kept(str(path), str(tmp_path))["a"].name == "A"
    assert load_registry_kept(str(path), str(tmp_path)).checkpoints == load_registry(str(path)).checkpoints


def test_a_kept_registry_is_refused_as_its_yaml_is(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(registry_yaml(("a", "A"), ("a", "Again")))  # fields valid, entries not
    with pytest.raises(BordermonError, match="duplicate id 'a'") as first:
        load_registry_kept(str(path), str(tmp_path))
    assert kept_files(tmp_path)  # the fields were kept; the check across entries runs again
    with pytest.raises(BordermonError) as again:
        load_registry_kept(str(path), str(tmp_path))
    assert str(again.value) == str(first.value)


def test_invalid_yaml_is_one_line_and_keeps_nothing(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("checkpoints: [")
    with pytest.raises(BordermonError, match="invalid YAML"):
        load_registry_kept(str(path), str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_a_directory_the_worker_cannot_write_only_costs_the_yaml_read(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(registry_yaml(("a", "A")))
    blocked = tmp_path / "a-file"  # a directory under a file cannot be made, not even by root
    blocked.write_text("")
    assert load_registry_kept(str(path), str(blocked / "data"))["a"].name == "A"
    assert load_registry_kept(str(path), str(blocked / "data")).checkpoints == load_registry(str(path)).checkpoints


def test_another_schema_keeps_its_fields_apart(tmp_path, monkeypatch):
    text = registry_yaml(("a", "A"))
    before = registrycache.cache_path(text, str(tmp_path))
    monkeypatch.setattr(registrycache, "_schema_digest", lambda: b"another version of RegistryFile")
    assert registrycache.cache_path(text, str(tmp_path)) != before
