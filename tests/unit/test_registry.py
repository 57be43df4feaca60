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


ONE = (
    "checkpoints: [{id: syrym, name: A, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},"
    " lane_capacity_per_hour: 30, wait_warning_minutes: 60, wait_critical_minutes: 120, lane_groups: %s}]"
)
CARS = "{id: cars, modes: [car, bus], lanes: {in: 2, out: 2}, lane_capacity_per_hour: 30}"
TRUCKS = "{id: trucks, modes: [truck], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 6, wait_warning_minutes: 720, wait_critical_minutes: 1440}"  # noqa: E501


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (f"[{CARS}, {CARS.replace('cars', 'buses')}]", "syrym: mode 'car' is in lane groups 'cars' and 'buses'"),
        (f"[{CARS}, {TRUCKS.replace('[truck]', '[]')}]", "syrym: lane group 'trucks' lists no modes"),
        (f"[{CARS}, {CARS.replace('[car, bus]', '[pedestrian]')}]", "syrym: duplicate lane group id 'cars'"),
        ("[]", "syrym: lane_groups lists no group"),
        (f"[{CARS.replace('[car, bus]', '[car, boat]')}]", "syrym: Invalid enum value 'boat'"),
        (f"[{CARS.replace('id: cars', 'id: Cars')}]", "syrym: Expected `str` matching regex"),
        (f"[{CARS.replace('30}', '30, colour: red}')}]", "syrym: Object contains unknown field `colour`"),
        (f"[{TRUCKS.replace('1440', '60')}]", "syrym: lane group 'trucks': wait_critical_minutes is below"),
    ],
)
def test_a_bad_lane_group_is_one_line_naming_its_checkpoint(groups, message):
    with pytest.raises(BordermonError) as info:
        parse_registry(ONE % groups, "x.yaml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_lane_groups_route_modes_and_inherit_the_checkpoint_thresholds():
    cp = parse_registry(ONE % f"[{CARS}, {TRUCKS}]", "x.yaml")["syrym"]
    assert [g.id for g in cp.lane_groups] == ["cars", "trucks"]
    assert cp.group_of("truck").id == "trucks" and cp.group_of("bus").id == "cars"
    assert cp.group_of("pedestrian").id == "cars" and cp.group_of(None).id == "cars", "unlisted: the first group"
    cars, trucks = cp.lane_groups
    assert (cars.warning_seconds, cars.critical_seconds) == (3600, 7200), "the checkpoint's thresholds"
    assert (trucks.warning_seconds, trucks.critical_seconds) == (720 * 60, 1440 * 60)
    assert (trucks.lanes_in, trucks.lane_capacity_per_hour) == (1, 6)


def test_a_checkpoint_without_groups_has_one_group_all_with_its_own_lanes():
    cp = parse_registry((ONE % "[]").replace(", lane_groups: []", ""), "x.yaml")["syrym"]
    (only,) = cp.lane_groups
    assert only.id == "all" and only.modes == () and cp.group_of("truck") is only
    assert (only.lanes_in, only.lanes_out, only.lane_capacity_per_hour) == (1, 1, 30)
    assert (only.warning_seconds, only.critical_seconds) == (3600, 7200)
