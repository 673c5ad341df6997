"""The code location loads the way `dagster dev -w workspace.yaml` and `dg` load it, and loads fast."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("evidently", "great_expectations", "shap", "mlflow", "sklearn", "matplotlib", "lightgbm", "xgboost")


def test_workspace_validates(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model_assurance" in proc.stderr + proc.stdout


def test_dg_checks_the_same_location_under_the_same_name(tmp_path):
    """`dg` reads `[tool.dg]` in pyproject.toml: a location named otherwise would restart sensor cursors."""
    dg_cli = Path(sys.executable).with_name("dg")
    assert dg_cli.exists(), "dg is missing: install the test extra (dagster-dg-cli)"
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run(
        [str(dg_cli), "check", "defs", "--log-level", "info"],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "Validation successful for code location model_assurance." in proc.stderr + proc.stdout


def test_code_location_imports_no_heavy_library():
    code = f"import sys, assurance.definitions; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""
