"""What every assurance asset shares: owners, the progress log, the partition's model and version."""

import logging

import dagster as dg

from assurance.domain.values import split_partition_key

OWNERS = ["team:model-risk"]
progress_log = logging.getLogger("assurance.progress")


def progress(context: dg.AssetExecutionContext, message: str) -> None:
    """One line to the run's log in the UI and to the command line's progress output."""
    context.log.info(message)
    progress_log.info("%s: %s", context.partition_key, message)


def model_and_version(context: dg.AssetExecutionContext) -> tuple[str, str]:
    return split_partition_key(context.partition_key)
