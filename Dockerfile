# Multi-stage build: a builder with the Rust toolchain and what LightGBM's C++ build needs
# (CMake >= 3.28 from PyPI, libclang + clang headers for bindgen), then a slim runtime.
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang1-14 libclang-common-14-dev python3-venv \
 && python3 -m venv /opt/cmake && /opt/cmake/bin/pip install --no-cache-dir 'cmake>=3.28' \
 && rm -rf /var/lib/apt/lists/*
ENV CMAKE=/opt/cmake/bin/cmake PATH=/opt/cmake/bin:$PATH
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY assets ./assets
COPY config ./config
# The binary embeds config/default.toml, config/variants.toml, the demo bundle and the chart font.
COPY models ./models
RUN cargo build --release --bin recserve

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app recserve
WORKDIR /app
COPY --from=builder /src/target/release/recserve /usr/local/bin/recserve
COPY config ./config
COPY models ./models
RUN mkdir -p /app/data && chown -R recserve /app/data
USER recserve
ENV RECSERVE_SERVER__ADDR=0.0.0.0:8080 RECSERVE_FEEDBACK__LOG__DIR=/app/data/events
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["recserve"]
CMD ["serve"]
