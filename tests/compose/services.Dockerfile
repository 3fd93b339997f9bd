# NATS and PostgreSQL for the compose test (tests/compose_run.rs), from Debian's packages on
# the locally made bookworm base, standing in for nats:2.10-alpine and postgres:16-alpine:
# the same entrypoints as far as docker-compose.yml uses them (nats-server's flags as the
# command; POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, data in /var/lib/postgresql/data)
# and the tools their health checks run (wget, pg_isready).
#
#   docker build --build-arg BASE=IMAGE --target nats|postgres -f services.Dockerfile tests/compose
ARG BASE

FROM ${BASE} AS nats
RUN apt-get update \
    && apt-get install -y --no-install-recommends nats-server wget \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o nobody -g nogroup /data
USER nobody
ENTRYPOINT ["nats-server"]

FROM ${BASE} AS postgres
# No cluster from the package's scripts: the entrypoint makes one in the data volume.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/spindle.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/lib/postgresql/*/bin /usr/lib/postgresql/bin \
    && install -d -m 0700 -o postgres -g postgres /var/lib/postgresql/data \
    && install -d -m 2775 -o postgres -g postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENTRYPOINT ["postgres-entrypoint.sh"]
