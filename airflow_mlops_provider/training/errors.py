"""Errors of the trainer and the exit codes the CLI maps them to (the operator reads the codes back)."""

import signal

#: Trained and logged.
EXIT_OK = 0
#: Training failed (a diverged loss, an unreachable server, a bug): a retry may succeed.
EXIT_FAILED = 1
#: The configuration, environment or dataset is unusable: a retry cannot succeed.
EXIT_BAD_INPUT = 2
#: Stopped by SIGTERM (the task was killed or timed out), after ending the run FAILED.
EXIT_TERMINATED = 128 + signal.SIGTERM


class TrainerInputError(ValueError):
    """The configuration, environment or dataset is unusable (exit code :data:`EXIT_BAD_INPUT`)."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite during training (exit code :data:`EXIT_FAILED`)."""


class TrainerTerminated(BaseException):
    """SIGTERM arrived: unwinds like ``KeyboardInterrupt``, so the MLflow run ends FAILED
    (exit code :data:`EXIT_TERMINATED`)."""
