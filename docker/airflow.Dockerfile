# syntax=docker/dockerfile:1
# Airflow 3.3 with airflow-mlops-provider installed. The api-server, scheduler, dag-processor, triggerer, Celery
# workers (which run the tasks) and flower of docker-compose.yaml all run this image.
#
# Build from the repository root (docker-compose.yaml does it for you):
#   docker build -f docker/airflow.Dockerfile -t airflow-mlops-provider/airflow:0.2.0 .
ARG AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

# The official image installs Python packages as the `airflow` user (into its user site), never as root.
USER airflow

# The repository's pins for Python 3.11 and Airflow 3.3.2. They stay in the image so that a later
# `pip install -c /opt/airflow/constraints-3.11.txt ...` layer resolves the same versions.
COPY --chown=airflow:0 constraints/constraints-3.11.txt /opt/airflow/constraints-3.11.txt
# README.md* is a glob so that the build also works before the repository has a README.
COPY --chown=airflow:0 pyproject.toml README.md* /tmp/airflow-mlops-provider/
COPY --chown=airflow:0 airflow_mlops_provider /tmp/airflow-mlops-provider/airflow_mlops_provider

# Extras:
# - prod: the production topology of docker-compose.yaml: the celery and postgres providers (CeleryExecutor on
#   Redis, PostgreSQL metadata), feast[redis,postgres] (the Redis online store and the SQL registry, through
#   psycopg 3) and s3fs (Feast reads the offline parts from S3).
# - openlineage: the OpenLineage provider, which records the lineage of every task (docker-compose.yaml writes
#   the events to files).
# - all: feast, gx and evidently, as the feature, validation and drift tasks run in the Celery workers; and
#   trainer (torch, mlflow, pandas, pyarrow): GPU training runs in the trainer image, but the workers need
#   torch too. PromoteModelOperator loads the challenger's and the champion's pyfunc models, which wrap a
#   torch network, to score them on the holdout set. The `local` training backend also runs the trainer as
#   a subprocess of the worker. Workers have no GPU, so torch comes from PyTorch's CPU wheel index: about
#   200 MB, where PyPI's Linux torch pulls several GB of CUDA wheels. pip prefers the index's `2.13.0+cpu`
#   build, and it still satisfies the `torch==2.13.0` pin.
# apache-airflow is pinned to the base image's version (AIRFLOW_VERSION is set by the base image), so pip
# can never upgrade or downgrade Airflow itself.
RUN pip install --no-cache-dir \
        --constraint /opt/airflow/constraints-3.11.txt \
        --extra-index-url https://download.pytorch.org/whl/cpu \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/tmp/airflow-mlops-provider[all,prod,openlineage]" \
    && rm -rf /tmp/airflow-mlops-provider

# Fail the build, not the first DAG run, if the provider, the prod topology's clients or the trainer entry point
# are broken.
RUN python -c "from airflow_mlops_provider.get_provider_info import get_provider_info as i; \
assert i()['package-name'] == 'airflow-mlops-provider'" \
    && python -c "import airflow.providers.celery, airflow.providers.openlineage, airflow.providers.postgres, \
psycopg, psycopg2, redis, s3fs" \
    && python -m airflow_mlops_provider.training --help > /dev/null \
    && python -c "import torch; print('torch', torch.__version__)"
