# Multi-stage build on Debian bookworm. The build stage uses the same
# dependency script as developers and CI; the runtime stage carries only the
# binary and the shared libraries it links.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh
COPY . .
RUN cmake --preset release && cmake --build --preset release

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-core0.17 libyaml-cpp0.7 libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin pw-router
COPY --from=build /src/build/release/pw-router /usr/local/bin/pw-router
COPY config.example.yaml /etc/pw-router/config.yaml
USER pw-router
ENV PW_ROUTER_HOST=0.0.0.0
EXPOSE 8100
HEALTHCHECK --interval=30s --timeout=3s \
  CMD curl -fsS http://127.0.0.1:8100/health >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/pw-router"]
CMD ["--config", "/etc/pw-router/config.yaml"]
