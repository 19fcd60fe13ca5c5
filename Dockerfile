# syntax=docker/dockerfile:1
# The operator image: a virtual environment built from the hash-locked requirements.lock and the
# project's wheel, copied into a slim runtime without build tools. Runs as a numeric non-root user and
# writes nothing to its root filesystem (the chart mounts it read-only, with an emptyDir on /tmp).
# The same install steps are tested without Docker: tests/e2e/test_image_install.py.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/operator
COPY requirements.lock /src/requirements.lock
RUN /opt/operator/bin/pip install --require-hashes --no-deps -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/operator/bin/pip wheel --no-deps --wheel-dir /src/dist /src \
    && /opt/operator/bin/pip install --no-deps /src/dist/*.whl \
    && /opt/operator/bin/pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="cams-webhook-operator" \
      org.opencontainers.image.description="Manages Alibaba Cloud CAMS phone-number webhooks declaratively" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /opt/operator /opt/operator
ENV PATH=/opt/operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CAMS_LIVENESS_ENDPOINT=http://0.0.0.0:8080/healthz \
    CAMS_METRICS_HOST=0.0.0.0
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["cams-webhook-operator"]
