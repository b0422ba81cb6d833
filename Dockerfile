# bugster-step: waits until a deployment answers, then tells Bugster to test it.
#
# Build (online):
#   docker build -t bugster-step:0.1.0 --build-arg VERSION=0.1.0 .
#
# Build without network (buildah bud --network=none, or any air-gapped builder):
#   python3 -m pip wheel --wheel-dir wheels --constraint constraints.txt . hatchling
#   buildah bud --network=none --pull=never -t bugster-step:0.1.0 .
# When wheels/ holds *.whl files, pip installs from it alone (--no-index). The
# wheels must suit the image's Python and platform: build them with the same
# Python minor version as PYTHON_IMAGE (3.12 by default), or fetch them with
# `pip download --only-binary=:all: --python-version 3.12 --platform ...`.
# hatchling is listed because the package itself is built from source here.
#
# The base is a build argument so that a local or mirrored image can stand in
# for python:3.12-slim. Any Debian-like image with python3 >= 3.10, its venv
# module and CA certificates works, python3 in /usr/local/bin or /usr/bin. For
# reproducible releases pass a digest: --build-arg PYTHON_IMAGE=python:3.12-slim@sha256:...
ARG PYTHON_IMAGE=python:3.12-slim


FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# A venv, not the system site-packages: Debian's python3 refuses system-wide
# installs (PEP 668), and a venv copies into the final stage as one folder.
# Its interpreter is a symlink to the base's python3, which is why both stages
# must use the same PYTHON_IMAGE.
RUN python3 -m venv /opt/bugster-step

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY step/ ./step/

# NOTE: `wheel[s]` is a glob so the build also works when wheels/ is absent.
# constraints.txt rides along because buildah, unlike Docker, fails a COPY
# whose every source matches nothing, but accepts one where some source
# exists (github.com/containers/buildah issues 3087 and 5742). The contents of
# wheels/, not the folder, land in /wheels; pip ignores the stray .txt there.
COPY constraints.txt wheel[s] /wheels/

# The install compiles bytecode, so a read-only container starts without
# writing any (PYTHONDONTWRITEBYTECODE below stops writes at run time). pip
# itself is then removed: the final image installs nothing.
RUN set -eu; \
    if [ -n "$(find /wheels -name '*.whl' -print -quit)" ]; then \
        set -- --no-index --find-links=/wheels; \
    fi; \
    /opt/bugster-step/bin/python -m pip install --no-cache-dir "$@" \
        --constraint constraints.txt .; \
    /opt/bugster-step/bin/python -m pip uninstall --yes --quiet pip setuptools


FROM ${PYTHON_IMAGE}

# Release metadata; pass the package version (step/bugster_step/__init__.py).
ARG VERSION=0.1.0
ARG SOURCE_URL=https://github.com/YOUR_ORG/bugster-step

LABEL org.opencontainers.image.title="bugster-step" \
      org.opencontainers.image.description="Waits until a deployment answers, then tells Bugster to test it." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# HOME=/tmp: CI runners start the container as an arbitrary uid with no home.
# REQUESTS_CA_BUNDLE: requests would use certifi's own bundle; pointing it at
# the system store makes CAs added with update-ca-certificates count too.
ENV PATH="/opt/bugster-step/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

COPY --from=build /opt/bugster-step /opt/bugster-step
COPY docker/entrypoint.sh /usr/local/bin/bugster-step-entrypoint

# - CA certificates: python:*-slim installs Debian's ca-certificates as a
#   runtime dependency (as does a base made with `--include=ca-certificates`),
#   so nothing is installed here; the build fails if a base lacks them.
#   REQUESTS_CA_BUNDLE (above) makes requests verify with this store; to trust
#   a private CA, add it with update-ca-certificates in a derived image.
# - The user is written into /etc/passwd directly: bases made with mmdebstrap
#   may lack useradd, and a fixed uid lets Kubernetes' runAsNonRoot check it.
# - `bugster-step --version` proves the venv runs in this stage.
RUN set -eu; \
    chmod 0755 /usr/local/bin/bugster-step-entrypoint; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        echo "base image has no /etc/ssl/certs/ca-certificates.crt: install ca-certificates in it" >&2; \
        exit 1; \
    fi; \
    echo 'bugster:x:10001:10001:bugster-step:/tmp:/usr/sbin/nologin' >> /etc/passwd; \
    echo 'bugster:x:10001:' >> /etc/group; \
    bugster-step --version

WORKDIR /workspace
USER 10001:10001

ENTRYPOINT ["/usr/local/bin/bugster-step-entrypoint"]
