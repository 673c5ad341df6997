"""Jobs, sensors and schedules: every way of starting work runs the same per-version asset graph.

- `registry_sensor` (RUNNING by default): registry changes start validation (sensors/registry_sensor.py)
- `monitor_production_versions`, `revalidate_due_versions` (STOPPED by default): sensors/cadence.py
- `assurance_run_failure_alerts`, `assurance_findings_alerts`, `assurance_overdue_alerts`,
  `assurance_alert_delivery` (RUNNING by default): alerts are raised by the first three and posted, with
  retries, by the last (sensors/alerts.py)
- `assurance_dead_runs` (RUNNING by default): started runs whose worker process is gone are marked failed
  (sensors/dead_runs.py)

Sensors and schedules are built from the `Settings` the composition root passes (intervals, caps, crons,
the alert webhook and its retry budget), so nothing here reads the environment.
"""

from __future__ import annotations

import dagster as dg

from assurance.settings import Settings
from sensors import alerts, cadence
from sensors.dead_runs import build_dead_run_sensor
from sensors.registry_sensor import build_registry_sensor
from sensors.validation_job import PER_VERSION_GROUPS, VALIDATION_JOB, assure_model_version

jobs = [assure_model_version]


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [
        build_registry_sensor(settings),
        *alerts.build_alert_sensors(settings),
        alerts.build_overdue_sensor(settings),
        build_dead_run_sensor(settings),
    ]


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return cadence.build_schedules(settings)


__all__ = ["PER_VERSION_GROUPS", "VALIDATION_JOB", "build_schedules", "build_sensors", "jobs"]
