# syntax=docker/dockerfile:1
# The GPU trainer image. GPUTrainingOperator runs it as a pod with
#   cmds = ["python", "-m", "airflow_mlops_provider.training"]   arguments = ["--data-uri", ...]
# It holds the trainer and its libraries only: no Airflow. airflow_mlops_provider.training and the core modules
# it uses (storage, datasets, metrics) import no Airflow, and the build checks below confirm it.
#
# Build from the repository root:
#   docker build -f docker/trainer.Dockerfile -t airflow-mlops-provider/trainer:0.2.0 .
#
# Why python:3.11 and not a pytorch/pytorch or nvidia/cuda base image: the logged model pickles the trainer's
# network and encoder code by value (cloudpickle). Such a pickle loads only on the Python minor version that
# wrote it. It is loaded by PromoteModelOperator and by batch inference on the Airflow workers, which run
# Python 3.11, so the trainer must run 3.11 too. CUDA still comes in: PyPI's torch 2.13.0 for linux/x86_64 is
# the CUDA 13.0 build, and it brings the CUDA runtime, cuDNN and NCCL as nvidia-* wheels. Only the NVIDIA driver
# comes from the node (R580 or newer for CUDA 13); the NVIDIA container toolkit mounts it into the container.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# Optional: a PyTorch wheel index for another CUDA build, e.g. a cu12x index from pytorch.org's install matrix
# for nodes with an older driver. pip prefers that index's `2.13.0+cu12x` build, which still satisfies the
# `torch==2.13.0` pin.
ARG TORCH_EXTRA_INDEX_URL=""

# NVIDIA_DRIVER_CAPABILITIES: what the NVIDIA container runtime mounts. NVIDIA_VISIBLE_DEVICES is left unset on
# purpose: the device plugin sets it to the GPUs the pod was given, so a pod that requests none sees none.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The libraries first, in their own layer, so that a code change does not reinstall torch. mlflow is the full
# distribution, not mlflow-skinny: the logged model pins `mlflow==<installed version>` in its requirements.
COPY constraints/constraints-3.11.txt /tmp/constraints-3.11.txt
RUN pip install --constraint /tmp/constraints-3.11.txt \
        ${TORCH_EXTRA_INDEX_URL:+--extra-index-url $TORCH_EXTRA_INDEX_URL} \
        torch mlflow pandas pyarrow boto3 \
    && rm /tmp/constraints-3.11.txt

# The provider package without its dependencies (Airflow, the cncf.kubernetes provider). README.md* is a glob
# so that the build also works before the repository has a README.
COPY pyproject.toml README.md* /tmp/airflow-mlops-provider/
COPY airflow_mlops_provider /tmp/airflow-mlops-provider/airflow_mlops_provider
RUN pip install --no-deps /tmp/airflow-mlops-provider && rm -rf /tmp/airflow-mlops-provider

# Fail the build if Airflow slipped in or the entry point is broken. This prints the CUDA version torch was built
# for; the build cannot check the GPU itself.
RUN python -c "import importlib.util, sys; sys.exit('airflow is installed' if importlib.util.find_spec('airflow') else 0)" \
    && python -m airflow_mlops_provider.training --help > /dev/null \
    && python -c "import torch; print('torch', torch.__version__, 'built for CUDA', torch.version.cuda)"

# A non-root user (numeric, so Kubernetes' runAsNonRoot can verify it). Group 0 and group-writable home let an
# arbitrary UID (OpenShift) write there too.
RUN useradd --no-log-init --uid 10001 --gid 0 --create-home --home-dir /home/trainer trainer \
    && chmod g+rwx /home/trainer
ENV HOME=/home/trainer
WORKDIR /home/trainer
USER 10001

# `docker run IMAGE` prints the trainer's help; `docker run IMAGE --data-uri ... --target ... --problem-type binary`
# trains. The pod spec of GPUTrainingOperator replaces the entrypoint with the same command and passes the arguments.
ENTRYPOINT ["python", "-m", "airflow_mlops_provider.training"]
CMD ["--help"]
