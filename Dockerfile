# pw-router container image. Two stages on Debian bookworm: the build stage
# uses the same dependency script and CMake preset as developers and CI; the
# runtime stage carries the binary and the shared libraries it links, nothing
# else. See docs/operations.md (Docker) for how to run it.
#
#   docker build -t pw-router .
#   docker run --rm -p 8100:8100 -e PW_ROUTER_API_KEY=... pw-router

# -- build ----------------------------------------------------------------------
FROM debian:bookworm AS build
WORKDIR /src
# The dependency layer depends only on the script, so a source change does
# not reinstall the packages.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh
COPY . .
# .git is not in the build context: the revision for --version and
# pw_router_build_info comes in as a build argument
# (docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD) .).
ARG REVISION=unknown
# build/release/pw-router is RelWithDebInfo; the copy that ships keeps its
# symbol table (readable backtraces and profiles) but not the DWARF data.
RUN cmake --preset release -DPW_REVISION="${REVISION}" \
 && cmake --build --preset release \
 && strip --strip-debug -o /pw-router build/release/pw-router

# -- runtime --------------------------------------------------------------------
FROM debian:bookworm-slim

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pw-router" \
      org.opencontainers.image.description="OpenAI-compatible LLM gateway (C++, CAF, Boost.Beast)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"

# The libraries the binary links (readelf -d build/release/pw-router):
#   libcaf_core.so.0.17.6 -> libcaf-core0.17   libyaml-cpp.so.0.7 -> libyaml-cpp0.7
#   libssl.so.3, libcrypto.so.3 -> libssl3     libre2.so.9 -> libre2-9
#   libsimdjson.so.14 -> libsimdjson14         libmimalloc.so.2 -> libmimalloc2.0
#   libhiredis.so.0.14 -> libhiredis0.14
# libstdc++6, libgcc-s1 and libc6 are in the base image; Boost.Beast and
# Boost.Asio are header-only, no Boost library is linked. ca-certificates is
# the system CA store that upstream TLS verifies against (models without
# ca_file).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-core0.17 libyaml-cpp0.7 libssl3 libre2-9 libsimdjson14 libhiredis0.14 \
      libmimalloc2.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pw-router \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin pw-router \
 && install -d -o 10001 -g 10001 -m 0750 /var/log/pw-router

COPY --from=build /pw-router /usr/local/bin/pw-router
COPY config.example.yaml /etc/pw-router/config.yaml
# Fails the build if a shared library is missing or the shipped config does
# not load.
RUN ldd /usr/local/bin/pw-router | { ! grep "not found"; } \
 && /usr/local/bin/pw-router --check-config /etc/pw-router/config.yaml

USER 10001:10001
# config.example.yaml listens on ${PW_ROUTER_HOST:-127.0.0.1}; in a container
# it must listen on every interface to be reachable through a published port.
ENV PW_ROUTER_HOST=0.0.0.0 \
    CONFIG_PATH=/etc/pw-router/config.yaml
EXPOSE 8100
# pw-router drains requests in flight on SIGTERM for server.drain_seconds
# (30 s by default): give `docker stop` a longer timeout (-t 40).
STOPSIGNAL SIGTERM
# No curl in the image: bash's /dev/tcp sends one GET /health/live and the
# check passes only on a 200 status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PW_ROUTER_PORT:-8100} && printf 'GET /health/live HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == 'HTTP/1.1 200 '* ]]"]
ENTRYPOINT ["/usr/local/bin/pw-router"]
CMD ["--config", "/etc/pw-router/config.yaml"]
