"""Jobs, sensors and schedules: every way of starting work runs the same per-version asset graph.

- `registry_sensor` (RUNNING by default): registry changes start validation (sensors/registry_sensor.py)
- `monitor_production_versions`, `revalidate_due_versions` (STOPPED by default): sensors/cadence.py
- `assurance_run_failure_alerts`, `assurance_findings_alerts` (RUNNING by default): sensors/alerts.py
"""

from __future__ import annotations

from sensors import alerts, cadence
from sensors.registry_sensor import registry_sensor
from sensors.validation_job import PER_VERSION_GROUPS, VALIDATION_JOB, assure_model_version

jobs = [assure_model_version]
sensors = [registry_sensor, *alerts.sensors]
schedules = list(cadence.schedules)

__all__ = ["PER_VERSION_GROUPS", "VALIDATION_JOB", "jobs", "schedules", "sensors"]
