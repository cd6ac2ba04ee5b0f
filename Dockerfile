# Two images from one file:
#   --target api     FastAPI under uvicorn; torch-free (also runs the migrations)
#   --target worker  the Celery worker with torch; TORCH_INDEX_URL picks the CUDA (or CPU) build
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 1000 chorus
WORKDIR /app
# Editable installs: migrations/ and models/ are found next to the package, as in a checkout.
COPY pyproject.toml README.md alembic.ini ./
COPY chorus ./chorus
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations

FROM base AS api
RUN pip install -e ".[api]"
USER chorus
EXPOSE 8000
CMD ["uvicorn", "api.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

FROM base AS worker
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}" && pip install -e ".[worker]"
# The project's own small model; mount real checkpoints over /app/models (or set CHORUS_MODELS_DIR).
COPY models ./models
USER chorus
# SIGTERM is Celery's warm shutdown: the batch in progress finishes before the container stops.
STOPSIGNAL SIGTERM
CMD ["chorus", "worker"]
