# syntax=docker/dockerfile:1
#
# sportrix-ingester production image.
#
#   docker build -t sportrix-ingester:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The builder turns the daemon (the root project, not the devkit/ workspace member) into a
# wheel and installs into a virtualenv the locked runtime dependencies (requirements/runtime.txt,
# exported from uv.lock by scripts/lock: exact versions, every file's hash checked) and then that
# wheel without resolving anything; the final stage copies only that virtualenv onto the same
# slim base. No compiler, no build frontend, no pip cache, no development tooling reaches the
# final image. The devkit stage between them is for docker-compose.yml's simulator only.
#
# tests/deploy/test_image_recipe.py runs the builder's install steps (the RUN lines between the
# "recipe" markers) outside Docker and starts the daemon from the result, so keep them plain
# shell that only uses the ENV variables declared in this stage.

# Pinned by tag; both stages must use the same image so the venv's interpreter symlink resolves.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    WHEEL_DIR=/tmp/wheels

WORKDIR /src

# The PEP 517 build frontend; the backend (hatchling) is fetched by it from pyproject.toml.
RUN python -m pip install --no-cache-dir "build==1.2.2.post1"

# Only what the wheel is built from (see also .dockerignore).
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt requirements/runtime.txt
COPY schemas/ schemas/
COPY ingester/ ingester/

# recipe: begin
RUN python -m build --wheel --outdir "$WHEEL_DIR" .
# A venv without pip of its own: the builder's pip installs into it (pip --python), so the
# final image carries no installer in the venv. The lock first (--require-hashes), then the
# wheel alone (--no-deps): nothing is resolved at build time.
RUN python -m venv --without-pip "$VIRTUAL_ENV" \
    && python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-cache-dir \
       --require-hashes -r requirements/runtime.txt \
    && python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-cache-dir --no-deps \
       "$WHEEL_DIR"/*.whl
# recipe: end


# The development tooling (the simulator of the docker-compose stack): the daemon's venv plus
# the devkit (devkit/), built only on request (docker build --target devkit). The image that
# ships is the last stage, which copies the builder's venv alone: no simulator, bench or demo.
FROM builder AS devkit

COPY devkit/ devkit/
RUN python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-cache-dir --no-deps ./devkit

ENV PATH=/opt/venv/bin:$PATH
USER 10001:10001
ENTRYPOINT ["sportrix-ingester"]
CMD ["simulate"]


FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="sportrix-ingester" \
      org.opencontainers.image.description="Streams the Sportrix live-scores WebSocket feed into Kafka as sport-specific Avro records." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Sportrix" \
      org.opencontainers.image.documentation="docs/deployment.md"

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# The daemon needs no installer at run time: drop the base image's pip/setuptools/wheel so they
# are neither usable in a running container nor reported by image scanners. Then a fixed
# numeric user (the Helm chart's runAsUser) with no home and no login shell, and the disk
# spool's mount point owned by it (a named volume mounted there starts with that owner).
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --system --gid 10001 ingester \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin ingester \
    && install -d -o 10001 -g 10001 -m 0750 /var/spool/sportrix-ingester

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /tmp

EXPOSE 9108

# Liveness of the daemon itself (the port follows INGESTER_HTTP_PORT); slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('INGESTER_HTTP_PORT', '9108'), timeout=4)"]

# Exec form: the daemon is PID 1 and receives SIGTERM itself (it flushes, then exits).
ENTRYPOINT ["sportrix-ingester"]
CMD ["run"]
