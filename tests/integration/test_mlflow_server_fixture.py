"""The session MLflow server answers under both loopback names and is usable by the client."""

from __future__ import annotations

import urllib.error
import urllib.request

import mlflow
import pytest

from tests.fixtures.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_host_header_is_allowed(mlflow_server: MlflowServer, host: str) -> None:
    port = mlflow_server.tracking_uri.rsplit(":", 1)[1]
    request = urllib.request.Request(
        f"{mlflow_server.tracking_uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
        headers={"Host": f"{host}:{port}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_mlflow_env_points_the_client_at_the_server(mlflow_env: str) -> None:
    assert mlflow.get_tracking_uri() == mlflow_env
    assert mlflow.MlflowClient().get_experiment_by_name("Default") is not None


def test_foreign_host_header_is_rejected(mlflow_server: MlflowServer) -> None:
    request = urllib.request.Request(
        f"{mlflow_server.tracking_uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
        headers={"Host": "rebind.example.com"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code in (400, 403)
