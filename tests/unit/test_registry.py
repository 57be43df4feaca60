import pytest

from bordermon.errors import BordermonError
from bordermon.registry import load_registry, parse_registry


def test_bundled_registry_covers_the_land_border_and_both_airports():
    reg = load_registry()
    modes = [reg[c].mode for c in reg.ids()]
    assert sum(m in ("road", "rail") for m in modes) >= 20
    assert {"astana-airport", "almaty-airport"} <= set(reg.ids())
    for cid in ("syrym", "taskala", "zhana-zhol", "karakoga", "kairak"):
        assert cid in reg
    assert reg["syrym"].name == "Syrym – Mashtakovo"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checkpoints: [", "invalid YAML"),
        ("checkpoints: []", "no checkpoints"),
        ("checkpoints: [{id: A}]", "checkpoints"),
        (
            "checkpoints: [{id: a, name: A, region: R, lat: 0, lon: 0, mode: boat, lanes: {in: 1, out: 1},"
            " lane_capacity_per_hour: 30, wait_warning_minutes: 1, wait_critical_minutes: 2}]",
            "mode",
        ),
    ],
)
def test_bad_registry_is_one_clear_line(text, message):
    with pytest.raises(BordermonError) as info:
        parse_registry(text, "x.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_registry_file(tmp_path):
    with pytest.raises(BordermonError, match="No such file"):
        load_registry(str(tmp_path / "missing.yaml"))
