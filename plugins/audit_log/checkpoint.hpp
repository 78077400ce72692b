#pragma once

// Signed checkpoints of the audit log: the Ed25519 key that signs them, the
// exact bytes it signs, and `pw-router audit-key`. Pure code over OpenSSL.
//
// A checkpoint is a record of the chain (audit_chain.hpp) whose fields are,
// in this order:
//
//   {"prev":"<head>","event":"checkpoint","file_genesis":"<64 hex>",
//    "line":N,"head":"<64 hex>","time":"<RFC 3339 UTC>",
//    "config_sha256":"<64 hex or empty>","every_lines":L,"every_seconds":S,
//    "key_id":"<16 hex>","sig":"<128 hex>"}
//
// - `file_genesis` is the genesis of the file it is in, `line` its own line
//   number there (the header is line 1), `head` the hash of the line before
//   it (equal to "prev"): with the genesis, the pair names one place in the
//   log, which a witness's copy can be matched against.
// - `config_sha256` is the SHA-256 of the configuration that served the
//   last record before it; `every_lines` and `every_seconds` the interval
//   the writer keeps, which the verifier holds it to.
// - `key_id` is the first 16 hex digits of the SHA-256 of the raw 32-byte
//   public key; `sig` the Ed25519 signature (RFC 8032), in hex, of
//   `checkpoint_message()`: eight lines, each ending in '\n':
//
//     pw-audit-checkpoint/1
//     file_genesis=<hex>
//     line=<N>
//     head=<hex>
//     time=<time>
//     config_sha256=<hex or empty>
//     every_lines=<L>
//     every_seconds=<S>
//
//   so anyone can check one with `openssl pkeyutl -verify -rawin`
//   (docs/plugins.md, "Signed checkpoints", shows how).

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pw::plugins::audit {

/// What a checkpoint signs.
struct checkpoint_fields {
  std::string file_genesis;
  uint64_t line = 0;
  std::string head;
  std::string time;
  std::string config_sha256;
  uint64_t every_lines = 0;
  uint64_t every_seconds = 0;
};

/// The bytes a checkpoint's signature covers (see the top of this file).
std::string checkpoint_message(const checkpoint_fields& fields);

/// An Ed25519 key: a private key (which signs and has a public half) or a
/// public key (which verifies). Immutable once loaded; any thread may use it.
class ed25519_key {
public:
  /// Reads a PEM private key (PKCS#8, as `audit-key --generate` writes).
  /// Refuses a key of another type, and a file group or others can read.
  static caf::expected<ed25519_key> load_private(const std::string& path);

  /// Reads a PEM public key (SubjectPublicKeyInfo, as `audit-key` prints).
  static caf::expected<ed25519_key> load_public(const std::string& path);

  /// Makes a new private key.
  static caf::expected<ed25519_key> generate();

  /// Whether it can sign.
  bool is_private() const { return private_; }

  /// The first 16 hex digits of the SHA-256 of the raw public key.
  const std::string& key_id() const { return key_id_; }

  /// The public key as PEM (SubjectPublicKeyInfo).
  std::string public_pem() const;

  /// The private key as PEM (PKCS#8); empty for a public key.
  std::string private_pem() const;

  /// The hex Ed25519 signature of `message`; empty for a public key or when
  /// OpenSSL fails.
  std::string sign_hex(std::string_view message) const;

  /// Whether `sig_hex` (128 hex digits) is this key's signature of
  /// `message`.
  bool verify_hex(std::string_view message, std::string_view sig_hex) const;

private:
  struct pkey_holder;
  std::shared_ptr<pkey_holder> key_;
  std::string key_id_;
  bool private_ = false;

  static caf::expected<ed25519_key> adopt(void* pkey, bool is_private,
                                          const std::string& what);
};

/// The checkpoint record (without "prev", which the writer adds) of
/// `fields`, signed by `key`.
nlohmann::ordered_json make_checkpoint(const checkpoint_fields& fields,
                                       const ed25519_key& key);

/// Whether a parsed line is a checkpoint (`"event":"checkpoint"` as its
/// second field).
bool is_checkpoint(const nlohmann::ordered_json& doc);

/// Whether a line's bytes are a checkpoint's, without parsing it: the
/// writer's own lines, read back when it opens a log.
bool looks_like_checkpoint(std::string_view line);

/// A checkpoint read back: its signed fields, key id and signature.
struct checkpoint_view {
  checkpoint_fields fields;
  std::string key_id;
  std::string sig;
};

/// Reads a checkpoint's fields from `doc`; returns why when one is missing
/// or of the wrong type ("" when it is well formed).
std::string read_checkpoint(const nlohmann::ordered_json& doc,
                            checkpoint_view& out);

/// Whether `x` is a string of exactly `size` lowercase hex digits.
bool is_lower_hex(const nlohmann::ordered_json& x, size_t size);

/// Runs `pw-router audit-key [--generate] FILE`: prints the public key of
/// the private key in FILE to `out`; with --generate first creates FILE
/// (mode 0600, refusing to overwrite) and FILE.pub (mode 0644). Returns 0,
/// 1 on failure (the reason on `err`), 2 on a usage error.
int audit_key_command(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err);

} // namespace pw::plugins::audit
