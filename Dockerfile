# The operator image. Issue 6 hardens it further (hash-locked dependencies); it already runs as a
# non-root numeric user and needs no writable root filesystem.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="cams-webhook-operator" \
      org.opencontainers.image.description="Manages Alibaba Cloud CAMS phone-number webhooks declaratively" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/cams_webhook_operator-*.whl \
    && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CAMS_LIVENESS_ENDPOINT=http://0.0.0.0:8080/healthz
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["cams-webhook-operator"]
