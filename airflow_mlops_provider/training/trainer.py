"""One training run: load and check the data, train, log everything into an existing MLflow run."""

from __future__ import annotations

import logging
import time
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import mlflow
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from airflow_mlops_provider.contracts import Tag
from airflow_mlops_provider.core.io.datasets import dataset_digest
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.training.data import load_dataset, split_dataset
from airflow_mlops_provider.training.encoding import FeatureEncoder
from airflow_mlops_provider.training.errors import TrainerInputError
from airflow_mlops_provider.training.loop import evaluate, train_model
from airflow_mlops_provider.training.options import TrainConfig
from airflow_mlops_provider.training.pyfunc_model import log_pyfunc_model
from airflow_mlops_provider.training.quiet import quiet_mlflow

log = logging.getLogger(__name__)


def run_training(config: TrainConfig, mlflow_run_id: str, store: ObjectStore | None = None) -> dict[str, Any]:
    """Train per ``config`` inside an existing MLflow run and return a summary: ``{mlflow_run_id,
    model_uri, dataset_digest, holdout_digest, metrics}``.

    The run is ended FINISHED on success and FAILED on any error. It receives: the config as params
    (plus row counts), per-epoch ``train_loss``/``val_loss``/``val_<metric>`` with ``step=epoch``,
    ``holdout_<metric>`` when there is a holdout split, ``best_epoch``, ``train_seconds``,
    ``train_samples_per_second``, ``gpu_peak_memory_mb`` (on CUDA), ``log_model_seconds``, the dataset as a
    training input with its digest, the tags
    :attr:`Tag.DATASET_URI`, :attr:`Tag.DATASET_DIGEST`, :attr:`Tag.SPLIT_POLICY` (also the param
    :attr:`RunParam.SPLIT_POLICY`), :attr:`Tag.HOLDOUT_DIGEST` (the digest of the holdout rows) and
    :attr:`Tag.MODEL_URI`, and the model ``model``.

    :param config: what to train.
    :param mlflow_run_id: the MLflow run to log into; it must exist.
    :param store: object store for the dataset; built from the environment if ``None``.
    :raises TrainerInputError: bad data or an unknown run.
    """
    try:
        active = mlflow.start_run(run_id=mlflow_run_id)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise TrainerInputError(f"MLflow run {mlflow_run_id!r} does not exist") from err
        raise
    with quiet_mlflow(), active:
        df = load_dataset(config.data_uri, store)
        splits = split_dataset(df, config)
        digest = dataset_digest(df)
        rows = {"rows_train": len(splits.train), "rows_validation": len(splits.validation)}
        rows["rows_holdout"] = 0 if splits.holdout is None else len(splits.holdout)
        mlflow.log_params(config.params() | rows)
        mlflow.set_tags(
            {
                Tag.DATASET_URI: config.data_uri,
                Tag.DATASET_DIGEST: digest,
                Tag.SPLIT_POLICY: config.split_policy,
                Tag.HOLDOUT_DIGEST: splits.holdout_digest,
            }
        )
        dataset = from_pandas(
            df,
            source=config.data_uri,
            targets=config.target,
            name=_dataset_name(config.data_uri),
            digest=digest,
        )
        mlflow.log_input(dataset, context="training")

        encoder = FeatureEncoder.fit(
            splits.train,
            config.problem_type,
            list(config.numeric_features),
            list(config.categorical_features),
            config.target,
        )
        result = train_model(config, encoder, splits, on_epoch=lambda e, m: mlflow.log_metrics(m, step=e))
        metrics = {
            "best_epoch": float(result.best_epoch),
            "train_seconds": result.seconds,
            "train_samples_per_second": result.samples_per_second,
        }
        if result.gpu_peak_memory_mb is not None:
            metrics["gpu_peak_memory_mb"] = result.gpu_peak_memory_mb
        if splits.holdout is not None:
            _, holdout = evaluate(result.model, encoder, splits.holdout, config.target)
            metrics |= {f"holdout_{name}": value for name, value in holdout.items()}

        started = time.perf_counter()
        info = log_pyfunc_model(result.model, encoder, splits.train)
        metrics["log_model_seconds"] = time.perf_counter() - started
        mlflow.log_metrics(metrics, model_id=info.model_id)
        mlflow.set_tag(Tag.MODEL_URI, info.model_uri)
        log.info("logged %s in %.1fs; %s", info.model_uri, metrics["log_model_seconds"], metrics)
    return {
        "mlflow_run_id": mlflow_run_id,
        "model_uri": info.model_uri,
        "dataset_digest": digest,
        "holdout_digest": splits.holdout_digest,
        "metrics": metrics,
    }


def _dataset_name(uri: str) -> str:
    """The file name of ``uri`` without its suffixes, e.g. ``training_set`` for ``s3://b/training_set.parquet``."""
    return PurePosixPath(urlsplit(uri).path).name.split(".")[0] or "dataset"
