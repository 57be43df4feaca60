"""The checkpoint registry: YAML on disk -> validated, immutable checkpoints."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Final, Literal

import msgspec
import yaml

from bordermon.errors import BordermonError

Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]+$", max_length=64)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=100)]
PositiveNumber = Annotated[float, msgspec.Meta(gt=0)]
# How a party travels: an event's optional `mode`, and what a lane group lists (CONTRACT.md).
Mode = Literal["car", "bus", "truck", "pedestrian", "rail", "air"]
# The one group of a checkpoint whose registry entry lists none (CONTRACT.md, "Lane groups").
DEFAULT_LANE_GROUP: Final = "all"


class AlertingOverride(msgspec.Struct, forbid_unknown_fields=True):
    for_minutes: Annotated[float, msgspec.Meta(ge=0)] | None = None
    resolve_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    forecast_horizon_minutes: Annotated[float, msgspec.Meta(gt=0)] | None = None
    forecast_for_minutes: Annotated[float, msgspec.Meta(ge=0)] | None = None
    forecast_resolve_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None


class Alerting(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    for_minutes: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    resolve_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    # QueueOverloadForecast (beyond the contract): fires when the critical threshold has been
    # forecast within the horizon for `forecast_for_minutes`, resolves when the forecast moves past
    # horizon / ratio. Tuned with `make accuracy` on mobilization-2022 (bench/README.md).
    forecast_horizon_minutes: Annotated[float, msgspec.Meta(gt=0)] = 90.0
    forecast_for_minutes: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    forecast_resolve_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5


class Lanes(msgspec.Struct, forbid_unknown_fields=True):
    in_: NonNegInt = msgspec.field(name="in")
    out: NonNegInt


class LaneGroupSpec(msgspec.Struct, forbid_unknown_fields=True):
    id: Id
    modes: list[Mode]
    lanes: Lanes
    lane_capacity_per_hour: PositiveNumber
    wait_warning_minutes: PositiveNumber | None = None
    wait_critical_minutes: PositiveNumber | None = None


class CheckpointSpec(msgspec.Struct):
    id: Id
    name: str
    region: str
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    mode: Literal["road", "rail", "air", "pedestrian"]
    lanes: Lanes
    lane_capacity_per_hour: PositiveNumber
    wait_warning_minutes: PositiveNumber
    wait_critical_minutes: PositiveNumber
    alerting: AlertingOverride | None = None
    lane_groups: list[LaneGroupSpec] | None = None
    # Descriptive extras (ignored by the pipeline).
    name_kk: str | None = None
    name_ru: str | None = None
    source: str | None = None


class RegistryFile(msgspec.Struct):
    checkpoints: list[CheckpointSpec]
    alerting: Alerting = msgspec.field(default_factory=Alerting)


class LaneGroup(msgspec.Struct, frozen=True):
    """Lanes of one checkpoint that queue apart (cars, trucks, people on foot): one queue per
    direction, with its own lanes, capacity and thresholds."""

    id: str
    modes: tuple[str, ...]
    lanes_in: int
    lanes_out: int
    lane_capacity_per_hour: float
    warning_seconds: float
    critical_seconds: float

    def initial_lanes(self, direction: str) -> int:
        return self.lanes_in if direction == "in" else self.lanes_out

    def threshold_seconds(self, severity: str) -> float:
        return self.warning_seconds if severity == "warning" else self.critical_seconds


class Checkpoint(msgspec.Struct, frozen=True):
    """One checkpoint with its alerting settings resolved (defaults + override) and its lane
    groups (one, `all`, with the checkpoint's own lanes and thresholds when it lists none)."""

    id: str
    name: str
    region: str
    lat: float
    lon: float
    mode: str
    lanes_in: int
    lanes_out: int
    lane_capacity_per_hour: float
    warning_seconds: float
    critical_seconds: float
    for_seconds: float
    resolve_ratio: float
    forecast_horizon_seconds: float = 5400.0
    forecast_for_seconds: float = 1200.0
    forecast_resolve_ratio: float = 0.5
    lane_groups: tuple[LaneGroup, ...] = ()
    # Which group an event's mode queues in; a mode no group lists (or none) queues in the first.
    group_by_mode: dict[str, LaneGroup] = {}
    group_by_id: dict[str, LaneGroup] = {}

    def __post_init__(self) -> None:
        groups = self.lane_groups or (
            LaneGroup(DEFAULT_LANE_GROUP, (), self.lanes_in, self.lanes_out, self.lane_capacity_per_hour,
                      self.warning_seconds, self.critical_seconds),
        )  # fmt: skip
        msgspec.structs.force_setattr(self, "lane_groups", groups)
        by_mode = {mode: g for g in groups for mode in g.modes}
        msgspec.structs.force_setattr(self, "group_by_mode", by_mode)
        msgspec.structs.force_setattr(self, "group_by_id", {g.id: g for g in groups})

    @property
    def default_group(self) -> LaneGroup:
        return self.lane_groups[0]

    def group_of(self, mode: str | None) -> LaneGroup:
        """The group a party travelling by `mode` queues in."""
        return self.group_by_mode.get(mode, self.lane_groups[0]) if mode is not None else self.lane_groups[0]

    def initial_lanes(self, direction: str) -> int:
        return self.lanes_in if direction == "in" else self.lanes_out

    def threshold_seconds(self, severity: str) -> float:
        return self.warning_seconds if severity == "warning" else self.critical_seconds


class Registry:
    """Checkpoints by id, in registry order."""

    def __init__(self, checkpoints: Mapping[str, Checkpoint], source: str) -> None:
        self.checkpoints = dict(checkpoints)
        self.source = source

    def __contains__(self, checkpoint_id: object) -> bool:
        return checkpoint_id in self.checkpoints

    def __getitem__(self, checkpoint_id: str) -> Checkpoint:
        return self.checkpoints[checkpoint_id]

    def __len__(self) -> int:
        return len(self.checkpoints)

    def ids(self) -> list[str]:
        return list(self.checkpoints)


def _lane_groups(spec: CheckpointSpec, source: str) -> tuple[LaneGroup, ...]:
    """The checkpoint's lane groups, each problem one line naming the checkpoint."""
    if spec.lane_groups is None:
        return ()
    where = f"checkpoint registry {source}: {spec.id}"
    if not spec.lane_groups:
        raise BordermonError(f"{where}: lane_groups lists no group (leave it out for one group, all)")
    groups: dict[str, LaneGroup] = {}
    owner: dict[str, str] = {}
    for g in spec.lane_groups:
        if g.id in groups:
            raise BordermonError(f"{where}: duplicate lane group id {g.id!r}")
        if not g.modes:
            raise BordermonError(f"{where}: lane group {g.id!r} lists no modes")
        for mode in g.modes:
            if mode in owner:
                raise BordermonError(f"{where}: mode {mode!r} is in lane groups {owner[mode]!r} and {g.id!r}")
            owner[mode] = g.id
        warning = spec.wait_warning_minutes if g.wait_warning_minutes is None else g.wait_warning_minutes
        critical = spec.wait_critical_minutes if g.wait_critical_minutes is None else g.wait_critical_minutes
        if critical < warning:
            raise BordermonError(f"{where}: lane group {g.id!r}: wait_critical_minutes is below wait_warning_minutes")
        groups[g.id] = LaneGroup(
            g.id, tuple(g.modes), g.lanes.in_, g.lanes.out, g.lane_capacity_per_hour, warning * 60.0, critical * 60.0
        )
    return tuple(groups.values())


def _resolve(spec: CheckpointSpec, defaults: Alerting, source: str) -> Checkpoint:
    override = spec.alerting or AlertingOverride()
    for_minutes = defaults.for_minutes if override.for_minutes is None else override.for_minutes
    ratio = defaults.resolve_ratio if override.resolve_ratio is None else override.resolve_ratio
    horizon = override.forecast_horizon_minutes or defaults.forecast_horizon_minutes
    forecast_for = (
        defaults.forecast_for_minutes if override.forecast_for_minutes is None else override.forecast_for_minutes
    )
    forecast_ratio = override.forecast_resolve_ratio or defaults.forecast_resolve_ratio
    return Checkpoint(
        id=spec.id,
        name=spec.name,
        region=spec.region,
        lat=spec.lat,
        lon=spec.lon,
        mode=spec.mode,
        lanes_in=spec.lanes.in_,
        lanes_out=spec.lanes.out,
        lane_capacity_per_hour=spec.lane_capacity_per_hour,
        warning_seconds=spec.wait_warning_minutes * 60.0,
        critical_seconds=spec.wait_critical_minutes * 60.0,
        for_seconds=for_minutes * 60.0,
        resolve_ratio=ratio,
        forecast_horizon_seconds=horizon * 60.0,
        forecast_for_seconds=forecast_for * 60.0,
        forecast_resolve_ratio=forecast_ratio,
        lane_groups=_lane_groups(spec, source),
    )


# libyaml's safe loader when PyYAML was built with it: the pure-Python one took 2.3 s for a
# registry of 2,400 checkpoints, which every worker start (and restart after a crash) pays.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_registry(text: str, source: str) -> Registry:
    """Parse and validate registry YAML; any problem is one BordermonError line."""
    return build_registry(registry_file(text, source), source)


def registry_file(text: str, source: str) -> RegistryFile:
    """Registry YAML as typed fields, each field's type and range checked (one line if not)."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BordermonError(f"checkpoint registry {source}: invalid YAML{where}") from None
    try:
        return msgspec.convert(data, RegistryFile, strict=False)
    except msgspec.ValidationError as exc:
        raise BordermonError(f"checkpoint registry {source}: {_naming_the_checkpoint(str(exc), data)}") from None


def build_registry(parsed: RegistryFile, source: str) -> Registry:
    """The checkpoints of a registry file, checked across fields and entries (one line if not)."""
    checkpoints: dict[str, Checkpoint] = {}
    for spec in parsed.checkpoints:
        if spec.id in checkpoints:
            raise BordermonError(f"checkpoint registry {source}: duplicate id {spec.id!r}")
        if spec.wait_critical_minutes < spec.wait_warning_minutes:
            raise BordermonError(
                f"checkpoint registry {source}: {spec.id}: wait_critical_minutes is below wait_warning_minutes"
            )
        checkpoints[spec.id] = _resolve(spec, parsed.alerting, source)
    if not checkpoints:
        raise BordermonError(f"checkpoint registry {source}: no checkpoints")
    return Registry(checkpoints, source)


def _naming_the_checkpoint(error: str, data: object) -> str:
    """A validation error whose path is `$.checkpoints[N]...`, with checkpoint N's id added: a
    registry of 2,400 checkpoints is not read by index."""
    found = re.search(r"\$\.checkpoints\[(\d+)\]", error)
    if found is None or not isinstance(data, dict):
        return error
    try:
        cid = data["checkpoints"][int(found.group(1))]["id"]
    except (KeyError, IndexError, TypeError):
        return error
    return f"{cid}: {error}" if isinstance(cid, str) else error


BUNDLED = "bundled:checkpoints.yaml"


def bundled_registry_text() -> str:
    return resources.files("bordermon").joinpath("data/checkpoints.yaml").read_text(encoding="utf-8")


def registry_path(path: str | None = None) -> str | None:
    """`path`, or $BORDERMON_CHECKPOINTS, or None for the bundled registry."""
    return path or os.environ.get("BORDERMON_CHECKPOINTS") or None


def registry_text(path: str | None = None) -> str:
    """The YAML of the registry at `path`, or $BORDERMON_CHECKPOINTS, or the bundled one."""
    path = registry_path(path)
    if path is None:
        return bundled_registry_text()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise BordermonError(f"checkpoint registry {path}: {exc.strerror or exc}") from None


def load_registry(path: str | None = None) -> Registry:
    """Load the registry at `path`, or $BORDERMON_CHECKPOINTS, or the bundled one."""
    path = registry_path(path)
    return parse_registry(registry_text(path), path or BUNDLED)
