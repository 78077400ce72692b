#include "http/tls_context.hpp"

#include "core/errc.hpp"
#include "http/server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace pw::http {

namespace {

/// The first OpenSSL error queued (the cause, not a wrapper such as "PEM
/// lib") as text, e.g. "no start line".
std::string openssl_error() {
  auto code = ERR_peek_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown error";
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  std::string text = buf.data();
  // "error:0A00012F:SSL routines::..." -> the reason after the last colon.
  auto colon = text.rfind(':');
  return colon == std::string::npos ? text : text.substr(colon + 1);
}

std::string time_text(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1)
    return {};
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

} // namespace

tls_context::tls_context() : ctx_(boost::asio::ssl::context::tls_server) {
  // nop
}

caf::expected<std::shared_ptr<tls_context>>
tls_context::load(const tls_config& cfg) {
  auto fail = [](std::string what) {
    return make_error(errc::invalid_config, "server.tls: " + std::move(what));
  };
  std::shared_ptr<tls_context> out{new tls_context};
  auto* ctx = out->ctx_.native_handle();
  ERR_clear_error();
  // OpenSSL's own reasons for an unreadable file ("system lib") say
  // little: check the files first.
  for (const auto* file : {&cfg.cert_file, &cfg.key_file}) {
    auto which = std::string{file == &cfg.cert_file ? "cert_file" : "key_file"};
    std::ifstream in{*file};
    if (!in)
      return fail(which + " '" + *file
                  + "' cannot be read: " + std::strerror(errno));
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*file, ec))
      return fail(which + " '" + *file + "' is not a file");
  }
  // An encrypted key would make OpenSSL ask for a passphrase on the
  // terminal; refuse it instead.
  SSL_CTX_set_default_passwd_cb(
    ctx, [](char*, int, int, void*) -> int { return 0; });
  // TLS 1.0 and 1.1 are never offered, whatever the system's openssl.cnf
  // says; no renegotiation, no compression, server cipher order.
  auto floor = cfg.min_version >= 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, floor) != 1)
    return fail("cannot set the minimum TLS version: " + openssl_error());
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                             | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1)
    return fail("cert_file '" + cfg.cert_file
                + "' is not a PEM certificate chain (" + openssl_error() + ")");
  if (SSL_CTX_use_PrivateKey_file(ctx, cfg.key_file.c_str(), SSL_FILETYPE_PEM)
      != 1) {
    // OpenSSL compares the key with the certificate while loading it.
    auto code = ERR_peek_last_error();
    if (ERR_GET_LIB(code) == ERR_LIB_X509
        && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return fail("key_file does not match cert_file ('" + cfg.key_file
                  + "' is not the key of '" + cfg.cert_file + "')");
    }
    return fail("key_file '" + cfg.key_file
                + "' is not an unencrypted PEM private key (" + openssl_error()
                + ")");
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("key_file does not match cert_file: " + openssl_error());
  if (auto* cert = SSL_CTX_get0_certificate(ctx)) {
    std::array<char, 256> name{};
    X509_NAME_oneline(X509_get_subject_name(cert), name.data(),
                      static_cast<int>(name.size()));
    out->subject_ = name.data();
    out->not_after_ = time_text(X509_get0_notAfter(cert));
  }
  return out;
}

caf::expected<std::shared_ptr<tls_context>> load_tls(const tls_config& cfg) {
  return tls_context::load(cfg);
}

std::string tls_subject(const tls_context& ctx) {
  return ctx.subject();
}

std::string tls_not_after(const tls_context& ctx) {
  return ctx.not_after();
}

} // namespace pw::http
