# audioclas as a CPU container image: the REST service (DEEPaaS v2 layout) on port 5000, or DEEPaaS itself.
#
#   docker build -t audioclas .                                  # tagging and custom heads (ONNX Runtime, no torch)
#   docker build --build-arg TRAIN=1 -t audioclas:train .        # + training: torch (CPU wheel), TensorBoard
#   docker build --build-arg WEIGHTS_FILE=path/in/context/mn04_as_mAP_432.pt .   # offline: no download
#   docker run -p 5000:5000 -e AUDIOCLAS_TOKEN=SECRET -v audioclas-home:/var/lib/audioclas audioclas
#   docker run -p 5000:5000 audioclas deepaas-run      # the DEEPaaS API instead (no token; docker/deepaas.conf)
#   docker run -p 6006:6006 -v audioclas-home:/var/lib/audioclas audioclas:train \
#       tensorboard --logdir /var/lib/audioclas/runs --bind_all        # training curves (TRAIN=1 images)
#
# BASE selects the base image: any Debian-like image with python3 (>= 3.11), python3-venv, useradd and sha256sum
# (make image-test builds on a debootstrap'd Debian bookworm, imported with podman import).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# The upstream EfficientAT release; audioclas/weights.py holds the same URL and sha256 (checked again at run time).
ARG WEIGHTS_URL=https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt
ARG WEIGHTS_SHA256=899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c
# A path inside the build context to take the checkpoint from instead of downloading it (offline builds).
ARG WEIGHTS_FILE=
COPY . /src
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --quiet build \
 && /opt/build/bin/python -m build --wheel --outdir /dist /src
RUN mkdir /weights \
 && if [ -n "$WEIGHTS_FILE" ]; then cp "/src/$WEIGHTS_FILE" /weights/mn04_as_mAP_432.pt; \
    else python3 -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=60).read(64 << 20))' \
         "$WEIGHTS_URL" /weights/mn04_as_mAP_432.pt; fi \
 && echo "$WEIGHTS_SHA256  /weights/mn04_as_mAP_432.pt" | sha256sum --check --strict -

FROM ${BASE}
# TRAIN=1 adds the training stack; torch comes from PyTorch's CPU index so that no CUDA build is pulled in.
# DEEPaaS is always installed: `deepaas-run` serves audioclas as a DEEPaaS v2 model, as the image it replaces did.
ARG TRAIN=0
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Or a folder of wheels holding the CPU torch (mounted into the build), searched before PyPI instead of TORCH_INDEX.
ARG TORCH_FIND_LINKS=
RUN useradd --user-group --no-create-home --uid 10001 --home-dir /var/lib/audioclas --shell /usr/sbin/nologin audioclas \
 && mkdir -p /var/lib/audioclas/datasets /var/cache/audioclas \
 && chown -R audioclas:audioclas /var/lib/audioclas /var/cache/audioclas
# torch first, in a layer of its own: a change to audioclas does not download it again.
RUN python3 -m venv /opt/audioclas \
 && if [ "$TRAIN" = 1 ]; then \
      if [ -n "$TORCH_FIND_LINKS" ]; then source="--find-links=$TORCH_FIND_LINKS"; \
      else source="--index-url=$TORCH_INDEX"; fi \
      && /opt/audioclas/bin/pip install --no-cache-dir --quiet "$source" "torch==$TORCH_VERSION" \
      && /opt/audioclas/bin/python -c 'import sys, torch; sys.exit(torch.version.cuda and "not the CPU build of torch")'; \
    fi
COPY --from=build /dist/ /tmp/dist/
RUN if [ "$TRAIN" = 1 ]; then extras=serve,deepaas,train; else extras=serve,deepaas; fi \
 && /opt/audioclas/bin/pip install --no-cache-dir --quiet "$(ls /tmp/dist/audioclas-*.whl)[$extras]" \
 && rm -rf /tmp/dist
COPY --from=build /weights/mn04_as_mAP_432.pt /opt/audioclas-weights/mn04_as_mAP_432.pt
COPY docker/deepaas.conf /etc/deepaas/deepaas.conf

LABEL org.opencontainers.image.title="audioclas" \
      org.opencontainers.image.description="Audio tagging (AudioSet, EfficientAT mn04) and custom classifiers: REST service, web page, DEEPaaS" \
      org.opencontainers.image.licenses="MIT AND CC-BY-4.0 AND CC-BY-SA-4.0"
ENV PATH=/opt/audioclas/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AUDIOCLAS_WEIGHTS=/opt/audioclas-weights/mn04_as_mAP_432.pt \
    AUDIOCLAS_HOME=/var/lib/audioclas \
    AUDIOCLAS_CACHE=/var/cache/audioclas \
    AUDIOCLAS_DATA_ROOT=/var/lib/audioclas/datasets
# Trained models, jobs and datasets (AUDIOCLAS_HOME; uploads land in datasets/uploads/, training reads only below
# datasets/), and the ONNX graph and embeddings (AUDIOCLAS_CACHE), outlive the container.
VOLUME ["/var/lib/audioclas", "/var/cache/audioclas"]
USER audioclas
WORKDIR /var/lib/audioclas
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=8)"]
CMD ["audioclas", "serve", "--host", "0.0.0.0"]
