# nats-server from Debian's packages (and wget for the health check), standing in for the
# official image.
FROM dcp-test/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nats-server wget && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["nats-server"]
