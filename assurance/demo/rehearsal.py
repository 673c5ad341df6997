"""One small version assured end to end in a throwaway registry, so first-use set-up is behind a worker.

Importing Great Expectations, Evidently, SHAP, MLflow's stores or matplotlib is only part of their cost:
the first data context, metric, explainer, registry connection (with its schema check) or figure of a
process builds registries, validators and caches, several seconds together on two cores. The warm run
launcher's fork server rehearses once before it forks run workers, so each worker starts with that done.
The rehearsal runs the command line's path (the same graph) on a 400-row demo version in a temporary
folder, with a temporary Dagster instance, and leaves nothing behind.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path

from assurance.demo import generator as demo

ROWS = 400
MODEL = "rehearsal"
log = logging.getLogger(__name__)


def register_small_version(root: Path) -> str:
    """An embedded registry under `root` with one onboarded credit version of `ROWS` rows; its tracking URI."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    uri = embedded_tracking_uri(root)
    train, reference, current = (demo.generate(ROWS, seed) for seed in (1, 2, 3))
    model = demo.classifier(seed=0, max_iter=20).fit(train[demo.FEATURES], train[demo.LABEL])
    register_version(
        MODEL, model, reference, current, label=demo.LABEL, features=demo.FEATURES, data_dir=root / "data",
        tracking_uri=uri, model_tags={"owner": "rehearsal", "assurance.slices": "region"},
    )  # fmt: skip
    return uri


def rehearse() -> bool:
    """Assure the small version once; whether it completed. A failure is only logged: a worker that starts
    cold is slower, not wrong. Threads it leaves running would not survive a fork, so any is reported."""
    from assurance.cli.launcher import run_version
    from assurance.settings import Settings

    running = set(threading.enumerate())
    try:
        with tempfile.TemporaryDirectory(prefix="assurance-rehearsal-") as folder:
            root = Path(folder)
            uri = register_small_version(root)
            outcome = run_version(
                MODEL, "1", Settings(tracking_uri=uri, evidence_root=str(root / "evidence"))
            )
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning("the rehearsal before forking run workers failed; workers start cold", exc_info=True)
        return False
    extra = [t.name for t in threading.enumerate() if t not in running]
    if extra:
        log.warning("threads left by the rehearsal, absent in forked workers: %s", ", ".join(extra))
    if not outcome.success:
        log.warning("the rehearsal's run failed (%s); workers start partly cold", outcome.error)
    return outcome.success
