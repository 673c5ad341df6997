"""The code location loads the way `dagster dev -w workspace.yaml` loads it, and loads fast."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("evidently", "great_expectations", "shap", "mlflow", "sklearn", "matplotlib", "lightgbm", "xgboost")


def test_workspace_validates(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        ["dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model_assurance" in proc.stderr + proc.stdout


def test_code_location_imports_no_heavy_library():
    code = f"import sys, assurance.definitions; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""
