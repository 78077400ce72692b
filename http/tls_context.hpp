#pragma once

// Inbound TLS: the server's certificate, key and protocol floor, loaded from
// `server.tls`. A context is immutable once made; SIGHUP makes a new one and
// the io threads switch to it for new connections.

#include "core/config/config.hpp"

#include <boost/asio/ssl/context.hpp>
#include <caf/expected.hpp>

#include <memory>
#include <string>

namespace pw::http {

class tls_context {
public:
  /// Reads the chain and key of `cfg`, checks that they belong together and
  /// accepts TLS 1.2 (or 1.3, per `min_version`) and later only.
  static caf::expected<std::shared_ptr<tls_context>>
  load(const tls_config& cfg);

  boost::asio::ssl::context& native() { return ctx_; }

  /// The certificate's subject and expiry, for the log.
  [[nodiscard]] const std::string& subject() const { return subject_; }
  [[nodiscard]] const std::string& not_after() const { return not_after_; }

private:
  tls_context();

  boost::asio::ssl::context ctx_;
  std::string subject_;
  std::string not_after_;
};

using tls_context_ptr = std::shared_ptr<tls_context>;

} // namespace pw::http
