#pragma once

// The HTTP server: N io threads, each with its own io_context, its own
// SO_REUSEPORT acceptor on the same port and its own upstream pool. A
// connection never changes thread. This header keeps Beast out of its
// includers.

#include "actors/fwd.hpp"

#include "actors/gateway_api.hpp"
#include "actors/redis_store.hpp"
#include "core/config/config.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace pw::http {

class tls_context;

/// Loads `server.tls`: the certificate chain and key (checked to belong
/// together) and the protocol floor. The error names the file and why.
caf::expected<std::shared_ptr<tls_context>> load_tls(const tls_config& cfg);

/// The certificate's subject and expiry, for the log.
std::string tls_subject(const tls_context& ctx);
std::string tls_not_after(const tls_context& ctx);

class server {
public:
  /// Binds one acceptor per io thread to `host:port` (port 0 picks a free
  /// port, shared by all acceptors). Nothing is accepted before start().
  /// With `tls`, every connection starts with a TLS handshake.
  static caf::expected<std::unique_ptr<server>>
  bind(gateway_config_ptr config, const std::string& host, uint16_t port,
       std::shared_ptr<tls_context> tls = nullptr);

  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The bound port.
  [[nodiscard]] uint16_t port() const;

  /// The bound address as text.
  [[nodiscard]] std::string address() const;

  /// Returns the function the SUPERVISOR uses to publish a new generation
  /// to every io thread.
  [[nodiscard]] actors::publish_fn publisher();

  /// Returns the function MODELs run their health checks with, and the
  /// `http` plugin its calls: each call on the next io thread in turn,
  /// through that thread's connection pool.
  [[nodiscard]] upstream_fn health_checker();

  /// Returns the function the LEDGER makes its Redis connection with: one
  /// driven by the last io thread's event loop.
  [[nodiscard]] actors::redis_link_factory redis_links();

  /// Hands a new certificate to every io thread for the connections they
  /// accept from now on; returns once each has it (SIGHUP, main thread).
  void set_tls(std::shared_ptr<tls_context> tls);

  /// Starts the io threads serving `gen`.
  void start(actors::generation_ptr gen);

  /// Stops accepting and lets in-flight requests finish (keep-alive off)
  /// for up to `grace`; then closes every remaining connection and cancels
  /// its upstream call. Returns when no connection is left (or 2 s later).
  void drain(std::chrono::milliseconds grace);

  /// Stops every io thread and joins them. Pending
  /// handlers stay queued until the server is destroyed (after the actors).
  void stop();

  struct impl;

private:
  explicit server(std::unique_ptr<impl> p);

  std::unique_ptr<impl> impl_;
};

} // namespace pw::http
