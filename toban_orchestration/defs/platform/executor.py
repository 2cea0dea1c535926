"""Where a run's steps execute: inside the run's own process (Dagster's `in_process_executor`, in
the run's pod on Kubernetes), or each step in a Kubernetes pod of its own (dagster-k8s's
k8s_job_executor). See deploy/kubernetes/README.md, "Steps in pods of their own"."""

import dagster as dg

DEFAULT = "default"
KUBERNETES = "k8s"


class StepExecutorError(ValueError):
    """The chosen step executor is unknown or cannot be loaded."""


def step_executor(choice: str | None) -> dg.ExecutorDefinition:
    """The executor for every job of the Definitions.

    By default a run's steps execute in the run's own process (`in_process_executor`), not in
    a process each (Dagster's `multiprocess_executor`): our steps wait on Slack and the model
    and hand each other nothing but rows in PostgreSQL, and every step process imports the
    project again, seconds of CPU each on 2 cores, which a new workspace's snapshot (three
    steps) and its range run (one) paid before their first call to Slack.

    Per-step pods take their image, namespace and Secrets from the instance's K8sRunLauncher,
    so nothing here repeats them. dagster-k8s is imported only when chosen: the local setup
    never needs it."""
    if choice in (None, "", DEFAULT):
        return dg.in_process_executor
    if choice != KUBERNETES:
        raise StepExecutorError(
            f"TOBAN_DAGSTER_EXECUTOR is '{choice}'; expected '{DEFAULT}' (steps run in the run's "
            f"own process) or '{KUBERNETES}' (each step in a Kubernetes pod of its own)."
        )
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError as error:
        raise StepExecutorError(
            f"TOBAN_DAGSTER_EXECUTOR={KUBERNETES} needs the dagster-k8s package, which the "
            "Kubernetes image installs (deploy/kubernetes/Dockerfile)."
        ) from error
    return k8s_job_executor
