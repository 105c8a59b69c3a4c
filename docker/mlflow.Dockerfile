# syntax=docker/dockerfile:1
# MLflow tracking server and model registry: PostgreSQL backend store, artifacts proxied to S3 (MinIO).
# The server flags are in docker-compose.yaml. The backend store URI comes from the environment
# (MLFLOW_BACKEND_STORE_URI), so its password is never on the command line.
#
# Build from the repository root (docker-compose.yaml does it for you):
#   docker build -f docker/mlflow.Dockerfile -t airflow-mlops-provider/mlflow:0.2.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job runner, so the server starts faster; this stack uses no MLflow jobs.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

# The repository's constraints pin mlflow and boto3 to the versions that the clients (the Airflow workers and the
# trainer) use. psycopg2-binary is not a dependency of the provider, so it is pinned here.
COPY constraints/constraints-3.11.txt /tmp/constraints-3.11.txt
RUN pip install --constraint /tmp/constraints-3.11.txt mlflow boto3 "psycopg2-binary==2.9.13" \
    && rm /tmp/constraints-3.11.txt \
    && mlflow --version

RUN useradd --no-log-init --uid 10001 --gid 0 --create-home --home-dir /home/mlflow mlflow
WORKDIR /home/mlflow
USER 10001

EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000"]
