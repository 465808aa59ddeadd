# The skyrun worker image: skyrun with its `gcp` extra, whose default command starts a
# worker with a health check on $PORT, as a Cloud Run service expects.
#
#   docker build -t REGISTRY/skyrun-worker:TAG .        (or `buildah bud`)
#
# The default command polls the pool named by SKYRUN_WORKER_POOL (and, when set, starts
# the worker type SKYRUN_WORKER_TYPE); any command given to the container replaces it,
# e.g. `gcloud run deploy ... --args "skyrun","worker","start","--with-healthcheck",...`
# (there is no ENTRYPOINT, so those arguments are the whole command).
# SKYRUN_API_URL and SKYRUN_API_KEY say which server to poll.

ARG BASE_IMAGE=python:3.11-slim

# Stage 1: a wheel of this checkout, so the image holds exactly this code.
FROM ${BASE_IMAGE} AS wheel
# The package index pip uses in this build (build arguments, not kept in the image).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
RUN python -m pip wheel --no-cache-dir --no-deps --disable-pip-version-check -w /dist .

# Stage 2: the worker.
FROM ${BASE_IMAGE}
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
# PIP_USER=0: pip run by the worker (below) must not fall back to a second copy of skyrun
# in ~/.local because site-packages belongs to root; with nothing to install it writes nothing.
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_USER=0 \
    HOME=/home/skyrun
# The wheel stays in the image: skyrun records it as where it was installed from, and
# `--install-policy always` installs the worker type's extra from that same wheel, which
# pip finds already installed (the gcp extra is installed now), instead of asking the
# index for another build.
COPY --from=wheel /dist/ /opt/skyrun/dist/
RUN set -e; \
    wheel="$(echo /opt/skyrun/dist/skyrun-*.whl)"; \
    python -m pip install --no-cache-dir "${wheel}[gcp]"; \
    mkdir -p /home/skyrun; \
    chown 10001:0 /home/skyrun; \
    chmod 0770 /home/skyrun
# Not root: a worker needs no privileges. A numeric user, so the image needs no useradd.
USER 10001
WORKDIR /home/skyrun
# Cloud Run sets PORT (8080 unless told otherwise); the health check listens on it.
EXPOSE 8080
CMD ["skyrun", "worker", "start", "--with-healthcheck"]
