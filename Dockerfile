# syntax=docker/dockerfile:1
#
# SL in a container: slserver, slcli and the shipped plugins.
#
#   docker build -t sl .
#   docker compose up            # with MongoDB, see docker-compose.yaml and docs/docker.md
#
# The image runs config.docker.lua: listen on 0.0.0.0:8080, store in MongoDB
# at mongodb://mongo (the compose service), plugins skeleton, http and mongo.
# To use another configuration, mount it over /opt/sl/config.lua.

# --- Stage 1: build the workspace -------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io downloads and the compiled dependencies
# between builds; target/ lives in the cache, so the artefacts are copied
# out to /out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace \
    && mkdir -p /out \
    && cp target/release/slserver target/release/slcli \
          target/release/libsl_skeleton.so target/release/libsl_http.so target/release/libsl_mongo.so \
          /out/

# --- Stage 2: the runtime image ---------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /opt/sl --shell /usr/sbin/nologin sl
COPY --from=build /out/slserver /out/slcli /usr/local/bin/
COPY --from=build /out/libsl_skeleton.so /out/libsl_http.so /out/libsl_mongo.so /opt/sl/plugins/
COPY config.docker.lua /opt/sl/config.lua
WORKDIR /opt/sl
USER sl
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["slcli", "--url", "http://127.0.0.1:8080", "ping"]
ENTRYPOINT ["slserver", "--config", "/opt/sl/config.lua"]
