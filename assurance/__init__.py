"""Continuous model assurance for MLflow model versions.

The package is plain Python (checks, policy, findings, evidence, registry and data adapters) except
for :mod:`assurance.definitions`, which assembles the Dagster code location.
"""

__version__ = "0.1.0"
