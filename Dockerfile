# syntax=docker/dockerfile:1
# Unitrack container image: build with the Rust toolchain, run on slim Debian.

# ---------- build stage ----------
FROM rust:1-bookworm AS builder
WORKDIR /app

# askama.toml is optional: the "[l]" glob lets COPY succeed when it is absent
# (a COPY with at least one real source tolerates an unmatched glob).
COPY Cargo.toml Cargo.lock askama.tom[l] ./
COPY src ./src
# Askama templates, sqlx migrations, static files and the default process
# definitions (config/processes/*.toml, include_str! in src/processes) are
# embedded into the binary at compile time, so they must be present here.
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY config ./config
# Cargo.toml declares the benchmark binary at bench/main.rs. Only the server is
# built below, but with its source present a plain `cargo build` works too.
COPY bench ./bench

# The cache mounts keep downloaded crates between builds (BuildKit); target/
# is deliberately not a cache mount so the binary stays in the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked --bin unitrack

# ---------- runtime stage ----------
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged system user; its home is a writable working directory in case
# the app creates relative files (e.g. a local data dir).
RUN useradd --system --user-group --create-home --home-dir /var/lib/unitrack \
      --shell /usr/sbin/nologin unitrack

COPY --from=builder /app/target/release/unitrack /usr/local/bin/unitrack

# Templates, migrations, static files and default processes are embedded in the binary.
ENV UNITRACK_LISTEN=0.0.0.0:8080

USER unitrack
WORKDIR /var/lib/unitrack
EXPOSE 8080

# No HEALTHCHECK: the slim image has no curl/wget to probe the HTTP port.
ENTRYPOINT ["unitrack"]
CMD ["serve"]
