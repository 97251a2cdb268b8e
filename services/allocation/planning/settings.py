"""The planning worker's settings (docs/spec.md §9), read from the environment and
validated once at start-up, like services.common.settings."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.settings import SettingsError

INTERVAL = "PLANNING_INTERVAL"
WORKER = "PLANNING_WORKER"
TIME_ZONE = "PLANNING_TIME_ZONE"
DEFAULT_INTERVAL_SECONDS = 900
MAX_INTERVAL_SECONDS = 7 * 86400


@dataclass(frozen=True)
class PlanningSettings:
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS  # between two refreshes of every SKU
    worker: bool = True  # whether `serve` starts a planning worker as its child
    time_zone: str = "UTC"  # IANA name: the calendar days of demand history

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PlanningSettings:
        env = os.environ if env is None else env
        interval = env.get(INTERVAL, "").strip() or str(DEFAULT_INTERVAL_SECONDS)
        if not interval.isdigit() or not 1 <= int(interval) <= MAX_INTERVAL_SECONDS:
            raise SettingsError(
                f"{INTERVAL}={interval!r}: expected whole seconds from 1 to {MAX_INTERVAL_SECONDS}"
            )
        worker = (env.get(WORKER, "").strip() or "on").lower()
        if worker not in ("on", "off"):
            raise SettingsError(f"{WORKER}={worker!r}: expected on or off")
        time_zone = env.get(TIME_ZONE, "").strip() or "UTC"
        try:
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"{TIME_ZONE}={time_zone!r}: expected an IANA time zone such as Europe/Berlin"
            ) from None
        return cls(int(interval), worker == "on", time_zone)
