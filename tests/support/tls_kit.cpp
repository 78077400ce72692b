#include "tests/support/tls_kit.hpp"

#include "tests/support/beast_response.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace pw::test {

namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;

struct key_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct cert_free {
  void operator()(X509* c) const { X509_free(c); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_free>;
using cert_ptr = std::unique_ptr<X509, cert_free>;

void check(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string{"test PKI: "} + what);
}

key_ptr new_key() {
  key_ptr k{EVP_EC_gen("P-256")};
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  auto* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

/// A certificate for `cn` with `key`, signed by `issuer` (self-signed when
/// null) with `issuer_key`.
cert_ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer,
                   EVP_PKEY* issuer_key, bool ca, long serial) {
  cert_ptr cert{X509_new()};
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * 2);
  X509_set_pubkey(cert.get(), key);
  auto* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(),
                       issuer ? X509_get_subject_name(issuer) : name);
  auto* signer = issuer ? issuer : cert.get();
  if (ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "CA:FALSE");
    add_ext(cert.get(), signer, NID_subject_alt_name,
            "DNS:localhost,IP:127.0.0.1");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  auto* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open for writing");
  bool ok
    = cert ? PEM_write_X509(f, cert) == 1
           : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr)
               == 1;
  std::fclose(f);
  check(ok, "PEM write");
}

} // namespace

test_pki make_test_pki(const std::string& name) {
  std::string tmpl = "/tmp/pw-pki-XXXXXX";
  check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  test_pki out;
  out.dir = tmpl;
  out.ca_cert = out.dir + "/ca.pem";
  out.server_cert = out.dir + "/server.pem";
  out.server_key = out.dir + "/server.key";
  auto ca_key = new_key();
  auto ca = make_cert(name + " test CA", ca_key.get(), nullptr, ca_key.get(),
                      true, 1);
  auto key = new_key();
  auto leaf
    = make_cert("localhost", key.get(), ca.get(), ca_key.get(), false, 2);
  write_pem(out.ca_cert, ca.get(), nullptr);
  write_pem(out.server_cert, leaf.get(), nullptr);
  write_pem(out.server_key, nullptr, key.get());
  return out;
}

http_response https_request(uint16_t port, const tls_client_options& opts,
                            const std::string& method,
                            const std::string& target, const std::string& body,
                            const header_list& headers) {
  ssl::context ctx{ssl::context::tls_client};
  ctx.set_verify_mode(ssl::verify_peer);
  if (!opts.ca_file.empty())
    ctx.load_verify_file(opts.ca_file);
  if (opts.min_version != 0 || opts.max_version != 0) {
    // Old versions need the lowest security level to be offered at all.
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), opts.min_version);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), opts.max_version);
  }
  http_response out;
  net::io_context ioc;
  auto run = [&]() -> net::awaitable<void> {
    constexpr auto nothrow = net::as_tuple(net::use_awaitable);
    beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};
    SSL_set_tlsext_host_name(stream.native_handle(), opts.host.c_str());
    stream.set_verify_callback(ssl::host_name_verification(opts.host));
    auto& tcp = beast::get_lowest_layer(stream);
    auto [cec] = co_await tcp.async_connect(
      {net::ip::make_address("127.0.0.1"), port}, nothrow);
    if (cec) {
      out.body = "connect: " + cec.message();
      co_return;
    }
    auto [hec]
      = co_await stream.async_handshake(ssl::stream_base::client, nothrow);
    if (hec) {
      out.body = "handshake: " + hec.message();
      co_return;
    }
    std::string version = SSL_get_version(stream.native_handle());
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method),
                                           target, 11};
    req.set(bhttp::field::host, opts.host);
    req.set(bhttp::field::connection, "close");
    for (const auto& [k, v] : headers)
      req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, req, nothrow);
    if (wec) {
      out.body = "write: " + wec.message();
      co_return;
    }
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    auto [rec, rn] = co_await bhttp::async_read(stream, buffer, res, nothrow);
    if (rec) {
      out.body = "read: " + rec.message();
      co_return;
    }
    out = to_http_response(res);
    out.headers["x-test-tls-version"] = version;
  };
  net::co_spawn(ioc, run(), net::detached);
  ioc.run_for(std::chrono::seconds{10});
  if (!ioc.stopped() && out.status == 0 && out.body.empty())
    out.body = "timed out";
  return out;
}

struct tls_connection::impl {
  int fd = -1;
  bool left = false;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
};

tls_connection::tls_connection(uint16_t port, const tls_client_options& opts)
    : impl_(std::make_unique<impl>()) {
  impl_->fd = ::socket(AF_INET, SOCK_STREAM, 0);
  check(impl_->fd >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::connect(impl_->fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
          == 0,
        "connect");
  impl_->ctx = SSL_CTX_new(TLS_client_method());
  check(impl_->ctx != nullptr, "SSL_CTX_new");
  SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_PEER, nullptr);
  check(SSL_CTX_load_verify_locations(impl_->ctx, opts.ca_file.c_str(), nullptr)
          == 1,
        "load CA");
  impl_->ssl = SSL_new(impl_->ctx);
  SSL_set_fd(impl_->ssl, impl_->fd);
  SSL_set_tlsext_host_name(impl_->ssl, opts.host.c_str());
  SSL_set1_host(impl_->ssl, opts.host.c_str());
  check(SSL_connect(impl_->ssl) == 1, "handshake");
}

tls_connection::~tls_connection() {
  leave();
  if (impl_->fd >= 0)
    ::close(impl_->fd);
  if (impl_->ssl != nullptr)
    SSL_free(impl_->ssl);
  if (impl_->ctx != nullptr)
    SSL_CTX_free(impl_->ctx);
}

bool tls_connection::send(const std::string& bytes) {
  return impl_->fd >= 0
         && SSL_write(impl_->ssl, bytes.data(), static_cast<int>(bytes.size()))
              == static_cast<int>(bytes.size());
}

std::string tls_connection::read_until(const std::string& text,
                                       std::chrono::milliseconds timeout) {
  std::string out;
  auto until = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (impl_->fd >= 0 && out.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    if (SSL_pending(impl_->ssl) == 0) {
      pollfd p{impl_->fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) != 1)
        break;
    }
    auto n = SSL_read(impl_->ssl, buf, sizeof(buf));
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void tls_connection::leave() {
  if (impl_->fd < 0 || impl_->left)
    return;
  impl_->left = true;
  SSL_shutdown(impl_->ssl); // close_notify
  ::shutdown(impl_->fd, SHUT_WR);
}

} // namespace pw::test
