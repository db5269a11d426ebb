# The Dockerfile's runtime stage, with the dcp binary the tests were built with (the build
# stages need images from Docker Hub).
FROM dcp-test/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/dcp --shell /usr/sbin/nologin dcp \
    && mkdir -p /var/lib/dcp && chown dcp:dcp /var/lib/dcp
COPY dcp /usr/local/bin/dcp
ENV DCP_BIND=0.0.0.0:8080 DCP_DATA_DIR=/var/lib/dcp RUST_LOG=info,sqlx=warn
VOLUME /var/lib/dcp
USER dcp
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dcp"]
CMD ["serve"]
