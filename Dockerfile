# drtool cron container: `drtool schedule run` with the PostgreSQL tools of one major version.
# Build: docker build --build-arg PG_MAJOR=15 -t drtool .
# PG_MAJOR must be >= the production server's major (pg_dump refuses newer servers): 15 is the
# default; 16 and 17 come from the same PGDG repository. The server package is installed too:
# monthly DR drills start an ephemeral cluster (rehearsal.scratch: ephemeral) with its initdb.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY drtool ./drtool
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG PG_MAJOR=15
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# PostgreSQL binaries of the chosen major from the PGDG repository, tini as PID 1.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg tini \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
       -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
       > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && install -d /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/drtool.conf \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && apt-get purge -y curl gnupg && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
COPY schedules /etc/drtool/schedules
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 drtool && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/drtool --create-home drtool
ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    DRTOOL_CONFIG=/etc/drtool/drtool.yaml \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/drtool
EXPOSE 9187
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9187/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--", "drtool"]
CMD ["--log-format", "json", "schedule", "run"]
