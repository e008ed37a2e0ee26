# syntax=docker/dockerfile:1
# The rdev Session operator: `docker build -t rdev-session-operator:0.1.0 .`
# Builder: a wheel of this project and a venv with it and its dependencies.
# Final: the same pinned Python, the venv, nothing else (no pip, no sources, no tests).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml ./
COPY operator/rdev_api/ operator/rdev_api/
COPY operator/session_operator/ operator/session_operator/
# The venv gets no pip of its own (the builder's installs into it), and bytecode
# is compiled here because the root filesystem is read-only at run time.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --compile /wheels/*.whl \
 && /opt/venv/bin/python -c "import session_operator.__main__"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rdev-session-operator" \
      org.opencontainers.image.description="Kubernetes operator for rdev.io Sessions"
# No build tools at run time; a passwd entry for the numeric user (kopf and
# getpass look the user up when POD_ID is not set).
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RDEV_METRICS_PORT=8000 \
    RDEV_HEALTH_PORT=8080
WORKDIR /
USER 65532:65532
EXPOSE 8000 8080
ENTRYPOINT ["python", "-m", "session_operator"]
