# syntax=docker/dockerfile:1
# dcp in a container: the UI is built, then the server, into a slim runtime that runs as an
# unprivileged user. See docker-compose.yml for the whole stack (PostgreSQL, NATS with
# JetStream, dcp with the Docker socket) and the README for what each setting does.
#
#   docker build -t dcp .
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://… -v /var/run/docker.sock:/var/run/docker.sock \
#       --group-add "$(stat -c %g /var/run/docker.sock)" dcp

# --- the web UI ---------------------------------------------------------------------------------
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/ ./
RUN npm ci --no-audit --no-fund && npm run build

# --- the server ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY aggregates ./aggregates
COPY projections ./projections
COPY migrations ./migrations
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY build.rs ./
COPY web/placeholder.html ./web/placeholder.html
# The built UI is embedded in the binary (build.rs).
COPY --from=web /web/dist ./web/dist
# (Plain RUN: it builds with the legacy builder too, e.g. docker-compose 1.x without BuildKit.)
RUN cargo build --release --locked --bin dcp && cp target/release/dcp /usr/local/bin/dcp

# --- the runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/dcp --shell /usr/sbin/nologin dcp \
    && mkdir -p /var/lib/dcp && chown dcp:dcp /var/lib/dcp
COPY --from=build /usr/local/bin/dcp /usr/local/bin/dcp
# Generated secrets (JWT, audit and master keys) are kept in the data dir: mount a volume.
ENV DCP_BIND=0.0.0.0:8080 \
    DCP_DATA_DIR=/var/lib/dcp \
    RUST_LOG=info,sqlx=warn
VOLUME /var/lib/dcp
# Not root; to reach the Docker socket, add the socket's group (`--group-add`, `group_add:`).
USER dcp
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
ENTRYPOINT ["dcp"]
CMD ["serve"]
