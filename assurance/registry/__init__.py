"""The MLflow registry adapter and the planning of sensor ticks from registry snapshots."""
