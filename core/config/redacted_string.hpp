#pragma once

// A secret (provider key, client key) that never prints itself.

#include <string>
#include <string_view>
#include <utility>

namespace pw {

/// Holds a secret. Its only accessor is `reveal()`, so every use of the
/// plain text is explicit and greppable; `to_string` prints "***".
class redacted_string {
public:
  redacted_string() = default;

  explicit redacted_string(std::string secret) : secret_(std::move(secret)) {
    // nop
  }

  /// Returns the secret itself. Call only where it goes on the wire.
  [[nodiscard]] const std::string& reveal() const noexcept { return secret_; }

  [[nodiscard]] bool empty() const noexcept { return secret_.empty(); }

  friend std::string to_string(const redacted_string& x) {
    return x.secret_.empty() ? std::string{} : std::string{"***"};
  }

  friend bool operator==(const redacted_string&, const redacted_string&)
    = default;

private:
  std::string secret_;
};

} // namespace pw
