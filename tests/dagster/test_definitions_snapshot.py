"""A snapshot of the code location's surface: asset keys, check names, jobs, schedules and sensors.

Check names feed finding ids and the UI's history, sensor names own cursors and run keys: a rename
must be a visible diff in `tests/snapshots/definitions.json`, never a silent change. After a deliberate
change, rewrite the snapshot with `python tests/dagster/test_definitions_snapshot.py` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "definitions.json"


def surface() -> dict[str, list[str]]:
    from assurance.definitions import defs

    repo = defs.get_repository_def()
    graph = repo.asset_graph
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "asset_checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def test_definitions_match_the_snapshot():
    assert surface() == json.loads(SNAPSHOT.read_text())


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(surface(), indent=1) + "\n")
    print(f"wrote {SNAPSHOT}")
