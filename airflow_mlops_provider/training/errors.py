"""Errors of the trainer, mapped to its exit codes by the CLI."""


class TrainerInputError(ValueError):
    """The configuration, environment or dataset is unusable (exit code 2)."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite during training (exit code 1)."""
