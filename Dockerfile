# syntax=docker/dockerfile:1
# One image for the six services; the Deployment (or compose service) chooses the command:
#   lc2backup-crd-gateway | lc2backup-db-export | lc2backup-doclib-transfer | lc2backup-metadata | lc2backup-archiver
#   | lc2backup-restorer
#
#   docker build -t lc2backup:0.1.0 .
#
# Only the six services and the libraries they import are installed (uv sync --package, frozen to uv.lock):
# no dev tools, no test servers. The image runs as an unprivileged user and needs no writable root
# filesystem (mount an emptyDir on /tmp, as deploy/k8s does).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/lc2backup
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Every workspace member's pyproject.toml must exist for a frozen sync; sources follow.
COPY pyproject.toml uv.lock ./
COPY libs/ libs/
COPY services/ services/
COPY tools/ tools/
RUN uv sync --frozen --no-dev --no-editable \
      --package lc2backup-crd-gateway \
      --package lc2backup-db-export \
      --package lc2backup-doclib-transfer \
      --package lc2backup-metadata \
      --package lc2backup-archiver \
      --package lc2backup-restorer

FROM python:${PYTHON_VERSION}-slim-bookworm
# pg_dump and pg_restore for the local provider's database dumps and restores; pg_dump must be at least the
# server's major version, so the client comes from the PostgreSQL project's repository (PG_MAJOR=16 dumps 16 and
# older; its pg_restore reads those dumps).
ARG PG_MAJOR=16
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
    curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg; \
    echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y --auto-remove curl gnupg; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 lc2backup; \
    useradd --system --uid 10001 --gid lc2backup --no-create-home --shell /usr/sbin/nologin lc2backup
COPY --from=build /opt/lc2backup /opt/lc2backup
ENV PATH=/opt/lc2backup/bin:/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LC2_HEALTH__HOST=0.0.0.0 \
    LC2_API__HOST=0.0.0.0
USER 10001:10001
EXPOSE 8080 8081 8082 8083 8084 8085
CMD ["lc2backup-crd-gateway"]
