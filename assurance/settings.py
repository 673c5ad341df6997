"""Every setting the product takes from the environment, read once, in one place.

`Settings.from_env()` is the only reader of these variables. The edges build one `Settings` and pass it
on explicitly: the code location (`assurance/definitions.py`: `build_definitions(Settings.from_env())`),
the command line (environment first, then its options on top with `Settings.override`) and
`python -m assurance.evidence.sql`. Nothing below them reads the environment for configuration, and
nothing writes it to pass configuration along.

| variable | field | default |
| --- | --- | --- |
| `MLFLOW_TRACKING_URI` | `tracking_uri` | unset: `sqlite:///mlflow.db` |
| `ASSURANCE_EVIDENCE_ROOT` | `evidence_root` | `./evidence` (a folder or any fsspec URI) |
| `ASSURANCE_POLICY` | `policy_path` | unset: the packaged default policy |
| `ASSURANCE_ALERT_WEBHOOK` | `alert_webhook` | unset: alerts go to the sensor log only |
| `ASSURANCE_DAGSTER_URL` | `dagster_url` | unset: failure alerts carry the run id without a link |
| `ASSURANCE_SENSOR_INTERVAL` | `sensor_interval` | 30 s between ticks (every sensor) |
| `ASSURANCE_SENSOR_MAX_RUNS` | `sensor_max_runs` | 25 runs per tick |
| `ASSURANCE_SENSOR_SETTLE_SECONDS` | `sensor_settle_seconds` | 15 s after registration before a first run |
| `ASSURANCE_MONITORING_CRON` | `monitoring_cron` | `0 6 * * *` (UTC) |
| `ASSURANCE_REVALIDATION_CRON` | `revalidation_cron` | `0 7 * * *` (UTC) |
| `DAGSTER_HOME` | `dagster_home` | unset: command-line runs use a temporary Dagster instance |

A blank value counts as unset. A value of the wrong type is a `SettingsError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from assurance.domain.errors import SettingsError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EVIDENCE_ENV = "ASSURANCE_EVIDENCE_ROOT"
POLICY_ENV = "ASSURANCE_POLICY"
WEBHOOK_ENV = "ASSURANCE_ALERT_WEBHOOK"
DAGSTER_URL_ENV = "ASSURANCE_DAGSTER_URL"
INTERVAL_ENV = "ASSURANCE_SENSOR_INTERVAL"
MAX_RUNS_ENV = "ASSURANCE_SENSOR_MAX_RUNS"
SETTLE_ENV = "ASSURANCE_SENSOR_SETTLE_SECONDS"
MONITORING_CRON_ENV = "ASSURANCE_MONITORING_CRON"
REVALIDATION_CRON_ENV = "ASSURANCE_REVALIDATION_CRON"
DAGSTER_HOME_ENV = "DAGSTER_HOME"

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EVIDENCE_ROOT = "./evidence"


@dataclass(frozen=True)
class Settings:
    """The product's configuration; the defaults are the documented ones (README, "Run it by itself")."""

    tracking_uri: str | None = None
    evidence_root: str = DEFAULT_EVIDENCE_ROOT
    policy_path: str | None = None
    alert_webhook: str | None = None
    dagster_url: str | None = None
    sensor_interval: int = 30
    sensor_max_runs: int = 25
    sensor_settle_seconds: int = 15
    monitoring_cron: str = "0 6 * * *"
    revalidation_cron: str = "0 7 * * *"
    dagster_home: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings the environment holds; unset or blank variables keep their defaults."""
        default = cls()

        def text(name: str, fallback: str | None) -> str | None:
            return (environ.get(name) or "").strip() or fallback

        return cls(
            tracking_uri=text(TRACKING_URI_ENV, default.tracking_uri),
            evidence_root=text(EVIDENCE_ENV, default.evidence_root),
            policy_path=text(POLICY_ENV, default.policy_path),
            alert_webhook=text(WEBHOOK_ENV, default.alert_webhook),
            dagster_url=text(DAGSTER_URL_ENV, default.dagster_url),
            sensor_interval=_integer(environ, INTERVAL_ENV, default.sensor_interval, minimum=1),
            sensor_max_runs=_integer(environ, MAX_RUNS_ENV, default.sensor_max_runs, minimum=1),
            sensor_settle_seconds=_integer(environ, SETTLE_ENV, default.sensor_settle_seconds, minimum=0),
            monitoring_cron=text(MONITORING_CRON_ENV, default.monitoring_cron),
            revalidation_cron=text(REVALIDATION_CRON_ENV, default.revalidation_cron),
            dagster_home=text(DAGSTER_HOME_ENV, default.dagster_home),
        )

    def override(self, **values: object) -> Settings:
        """These settings with the given fields replaced; None (an option not given) keeps the current value."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value
