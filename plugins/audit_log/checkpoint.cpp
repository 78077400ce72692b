#include "plugins/audit_log/checkpoint.hpp"

#include "core/errc.hpp"
#include "core/sha256.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <ostream>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace pw::plugins::audit {

namespace {

using json = nlohmann::ordered_json;

struct bio_free {
  void operator()(BIO* b) const { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;

struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;

caf::error key_error(const std::string& what) {
  return make_error(errc::internal, what);
}

std::string sys_error(int code) {
  return std::generic_category().message(code);
}

// Reads a whole (small) file; a key file is never large.
caf::expected<std::string> read_key_file(const std::string& path,
                                         bool must_be_private) {
  auto fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return key_error(path + ": cannot open: " + sys_error(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return key_error(path + ": not a regular file");
  }
  if (must_be_private && (st.st_mode & 077) != 0) {
    ::close(fd);
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    return key_error(path
                     + ": a private key must not be readable by group "
                       "or others (mode "
                     + std::string{mode.data()} + "); chmod 600 it");
  }
  if (st.st_size > 64 * 1024) {
    ::close(fd);
    return key_error(path + ": too large for a key file");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    auto n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  return text;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  auto n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string{data, static_cast<size_t>(n)} : std::string{};
}

} // namespace

bool is_lower_hex(const json& x, size_t size) {
  if (!x.is_string())
    return false;
  const auto& str = x.get_ref<const std::string&>();
  if (str.size() != size)
    return false;
  for (char c : str)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

namespace {

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return ::fsync(fd) == 0;
}

// Creates `path` with `mode`, refusing to replace a file, and writes `text`.
caf::expected<void> create_file(const std::string& path,
                                const std::string& text, mode_t mode) {
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return key_error(path + ": cannot create: " + sys_error(errno)
                     + (errno == EEXIST ? " (not replacing a key)" : ""));
  // The umask may have taken bits off; the mode is what is asked for.
  bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, text);
  auto err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return key_error(path + ": cannot write: " + sys_error(err));
  }
  return {};
}

} // namespace

struct ed25519_key::pkey_holder {
  EVP_PKEY* pkey = nullptr;
  explicit pkey_holder(EVP_PKEY* p) : pkey(p) {}
  pkey_holder(const pkey_holder&) = delete;
  pkey_holder& operator=(const pkey_holder&) = delete;
  ~pkey_holder() { EVP_PKEY_free(pkey); }
};

std::string checkpoint_message(const checkpoint_fields& f) {
  std::string out;
  out.reserve(320);
  out += "pw-audit-checkpoint/1\n";
  out += "file_genesis=" + f.file_genesis + "\n";
  out += "line=" + std::to_string(f.line) + "\n";
  out += "head=" + f.head + "\n";
  out += "time=" + f.time + "\n";
  out += "config_sha256=" + f.config_sha256 + "\n";
  out += "every_lines=" + std::to_string(f.every_lines) + "\n";
  out += "every_seconds=" + std::to_string(f.every_seconds) + "\n";
  return out;
}

caf::expected<ed25519_key> ed25519_key::adopt(void* raw, bool is_private,
                                              const std::string& what) {
  auto* pkey = static_cast<EVP_PKEY*>(raw);
  // A failed read leaves OpenSSL's per-thread error queue set, which a
  // later TLS call on this thread would take for its own.
  ERR_clear_error();
  if (pkey == nullptr)
    return key_error(what + ": not a PEM " + (is_private ? "private" : "public")
                     + " key");
  ed25519_key out;
  out.key_ = std::make_shared<pkey_holder>(pkey);
  if (!EVP_PKEY_is_a(pkey, "ED25519"))
    return key_error(what + ": not an Ed25519 key");
  std::array<unsigned char, 32> raw_public{};
  size_t n = raw_public.size();
  if (EVP_PKEY_get_raw_public_key(pkey, raw_public.data(), &n) != 1
      || n != raw_public.size())
    return key_error(what + ": cannot read the public key");
  out.key_id_ = to_hex(sha256(std::string_view{
                         reinterpret_cast<const char*>(raw_public.data()), n}))
                  .substr(0, 16);
  out.private_ = is_private;
  return out;
}

caf::expected<ed25519_key> ed25519_key::load_private(const std::string& path) {
  auto text = read_key_file(path, true);
  if (!text)
    return std::move(text.error());
  bio_ptr bio{BIO_new_mem_buf(text->data(), static_cast<int>(text->size()))};
  auto* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  return adopt(pkey, true, path);
}

caf::expected<ed25519_key> ed25519_key::load_public(const std::string& path) {
  auto text = read_key_file(path, false);
  if (!text)
    return std::move(text.error());
  bio_ptr bio{BIO_new_mem_buf(text->data(), static_cast<int>(text->size()))};
  auto* pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  return adopt(pkey, false, path);
}

caf::expected<ed25519_key> ed25519_key::generate() {
  return adopt(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), true,
               "a new key");
}

std::string ed25519_key::public_pem() const {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!key_ || PEM_write_bio_PUBKEY(bio.get(), key_->pkey) != 1)
    return {};
  return bio_text(bio.get());
}

std::string ed25519_key::private_pem() const {
  bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!key_ || !private_
      || PEM_write_bio_PrivateKey(bio.get(), key_->pkey, nullptr, nullptr, 0,
                                  nullptr, nullptr)
           != 1)
    return {};
  return bio_text(bio.get());
}

std::string ed25519_key::sign_hex(std::string_view message) const {
  if (!key_ || !private_)
    return {};
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  std::array<unsigned char, 64> sig{};
  size_t n = sig.size();
  if (!ctx
      || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey)
           != 1
      || EVP_DigestSign(ctx.get(), sig.data(), &n,
                        reinterpret_cast<const unsigned char*>(message.data()),
                        message.size())
           != 1
      || n != sig.size())
    return {};
  return to_hex(sig);
}

bool ed25519_key::verify_hex(std::string_view message,
                             std::string_view sig_hex) const {
  std::array<unsigned char, 64> sig{};
  if (!key_ || !parse_hex(sig_hex, sig))
    return false;
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  return ctx
         && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                                 key_->pkey)
              == 1
         && EVP_DigestVerify(
              ctx.get(), sig.data(), sig.size(),
              reinterpret_cast<const unsigned char*>(message.data()),
              message.size())
              == 1;
}

json make_checkpoint(const checkpoint_fields& f, const ed25519_key& key) {
  json out = json::object();
  out["event"] = "checkpoint";
  out["file_genesis"] = f.file_genesis;
  out["line"] = f.line;
  out["head"] = f.head;
  out["time"] = f.time;
  out["config_sha256"] = f.config_sha256;
  out["every_lines"] = f.every_lines;
  out["every_seconds"] = f.every_seconds;
  out["key_id"] = key.key_id();
  out["sig"] = key.sign_hex(checkpoint_message(f));
  return out;
}

bool is_checkpoint(const json& doc) {
  if (!doc.is_object() || doc.size() < 2)
    return false;
  auto second = std::next(doc.begin());
  return second.key() == "event" && second.value() == "checkpoint";
}

bool looks_like_checkpoint(std::string_view line) {
  // {"prev":"<64 hex>","event":"checkpoint",
  constexpr std::string_view marker = R"(","event":"checkpoint",)";
  constexpr size_t at = 9 + 64;
  return line.size() > at + marker.size() && line.starts_with(R"({"prev":")")
         && line.substr(at, marker.size()) == marker;
}

std::string read_checkpoint(const json& doc, checkpoint_view& out) {
  auto hex_field = [&](const char* name, size_t size, std::string& to,
                       bool may_be_empty) -> std::string {
    auto it = doc.find(name);
    if (it == doc.end())
      return std::string{"checkpoint has no "} + name;
    if (may_be_empty && it->is_string()
        && it->get_ref<const std::string&>().empty()) {
      to.clear();
      return {};
    }
    if (!is_lower_hex(*it, size))
      return std::string{"checkpoint "} + name + " is not "
             + std::to_string(size) + " lowercase hex digits";
    to = it->get<std::string>();
    return {};
  };
  auto count_field = [&](const char* name, uint64_t& to) -> std::string {
    auto it = doc.find(name);
    if (it == doc.end() || !it->is_number_unsigned())
      return std::string{"checkpoint "} + name
             + " is missing or not a whole number";
    to = it->get<uint64_t>();
    return {};
  };
  for (auto why :
       {hex_field("file_genesis", 64, out.fields.file_genesis, false),
        count_field("line", out.fields.line),
        hex_field("head", 64, out.fields.head, false),
        hex_field("config_sha256", 64, out.fields.config_sha256, true),
        count_field("every_lines", out.fields.every_lines),
        count_field("every_seconds", out.fields.every_seconds),
        hex_field("key_id", 16, out.key_id, false),
        hex_field("sig", 128, out.sig, false)})
    if (!why.empty())
      return why;
  auto time = doc.find("time");
  if (time == doc.end() || !time->is_string())
    return "checkpoint time is missing or not a string";
  out.fields.time = time->get<std::string>();
  return {};
}

int audit_key_command(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err) {
  bool generate = !args.empty() && args[0] == "--generate";
  if (args.size() != (generate ? 2u : 1u) || args.back().empty()
      || args.back()[0] == '-') {
    err << "usage: pw-router audit-key [--generate] FILE\n"
           "  prints the public key of the Ed25519 private key in FILE (PEM);\n"
           "  --generate first creates FILE (mode 0600) and FILE.pub\n";
    return 2;
  }
  const auto& path = args.back();
  if (generate) {
    // Both names free first: a refused .pub must not leave a new key behind.
    for (const auto& name : {path, path + ".pub"})
      if (::access(name.c_str(), F_OK) == 0) {
        err << "pw-router: " << name << " exists (not replacing a key)\n";
        return 1;
      }
    auto key = ed25519_key::generate();
    if (!key) {
      err << "pw-router: " << message_of(key.error()) << '\n';
      return 1;
    }
    if (auto made = create_file(path, key->private_pem(), 0600); !made) {
      err << "pw-router: " << message_of(made.error()) << '\n';
      return 1;
    }
    if (auto made = create_file(path + ".pub", key->public_pem(), 0644);
        !made) {
      err << "pw-router: " << message_of(made.error()) << '\n';
      return 1;
    }
    err << "pw-router: wrote " << path << " (private, mode 0600) and " << path
        << ".pub; key id " << key->key_id() << '\n';
  }
  auto key = ed25519_key::load_private(path);
  if (!key) {
    err << "pw-router: " << message_of(key.error()) << '\n';
    return 1;
  }
  out << key->public_pem();
  if (!generate)
    err << "pw-router: key id " << key->key_id() << '\n';
  return 0;
}

} // namespace pw::plugins::audit
