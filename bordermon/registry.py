"""The checkpoint registry: YAML on disk -> validated, immutable checkpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Literal

import msgspec
import yaml

from bordermon.errors import BordermonError

Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]+$", max_length=64)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=100)]
PositiveNumber = Annotated[float, msgspec.Meta(gt=0)]


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
    # Descriptive extras (ignored by the pipeline).
    name_kk: str | None = None
    name_ru: str | None = None
    source: str | None = None


class RegistryFile(msgspec.Struct):
    checkpoints: list[CheckpointSpec]
    alerting: Alerting = msgspec.field(default_factory=Alerting)


class Checkpoint(msgspec.Struct, frozen=True):
    """One checkpoint with its alerting settings resolved (defaults + override)."""

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


def _resolve(spec: CheckpointSpec, defaults: Alerting) -> Checkpoint:
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
    )


# libyaml's safe loader when PyYAML was built with it: the pure-Python one took 2.3 s for a
# registry of 2,400 checkpoints, which every worker start (and restart after a crash) pays.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_registry(text: str, source: str) -> Registry:
    """Parse and validate registry YAML; any problem is one BordermonError line."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BordermonError(f"checkpoint registry {source}: invalid YAML{where}") from None
    try:
        parsed = msgspec.convert(data, RegistryFile, strict=False)
    except msgspec.ValidationError as exc:
        raise BordermonError(f"checkpoint registry {source}: {exc}") from None
    checkpoints: dict[str, Checkpoint] = {}
    for spec in parsed.checkpoints:
        if spec.id in checkpoints:
            raise BordermonError(f"checkpoint registry {source}: duplicate id {spec.id!r}")
        if spec.wait_critical_minutes < spec.wait_warning_minutes:
            raise BordermonError(
                f"checkpoint registry {source}: {spec.id}: wait_critical_minutes is below wait_warning_minutes"
            )
        checkpoints[spec.id] = _resolve(spec, parsed.alerting)
    if not checkpoints:
        raise BordermonError(f"checkpoint registry {source}: no checkpoints")
    return Registry(checkpoints, source)


BUNDLED = "bundled:checkpoints.yaml"


def bundled_registry_text() -> str:
    return resources.files("bordermon").joinpath("data/checkpoints.yaml").read_text(encoding="utf-8")


def registry_text(path: str | None = None) -> str:
    """The YAML of the registry at `path`, or $BORDERMON_CHECKPOINTS, or the bundled one."""
    path = path or os.environ.get("BORDERMON_CHECKPOINTS") or None
    if path is None:
        return bundled_registry_text()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise BordermonError(f"checkpoint registry {path}: {exc.strerror or exc}") from None


def load_registry(path: str | None = None) -> Registry:
    """Load the registry at `path`, or $BORDERMON_CHECKPOINTS, or the bundled one."""
    path = path or os.environ.get("BORDERMON_CHECKPOINTS") or None
    return parse_registry(registry_text(path), path or BUNDLED)
