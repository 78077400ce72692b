// Loads the YAML configuration in two steps: parse (yaml-cpp) and expand
// `${VAR}`, then convert-and-validate into the structs of config.hpp. Every
// problem is collected with its YAML path, so one run reports them all.

#include "core/config/config.hpp"
#include "core/config/env_expand.hpp"
#include "core/config/provider_spec.hpp"
#include "core/config/yaml_node.hpp"
#include "core/errc.hpp"
#include "core/request/stream_guard.hpp"
#include "core/sha256.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sched.h>
#include <set>
#include <span>
#include <sstream>
#include <thread>

namespace pw {

std::string_view to_string(stream_mode x) {
  switch (x) {
  case stream_mode::hold:
    return "hold";
  case stream_mode::refuse:
    return "refuse";
  case stream_mode::record:
    return "record";
  }
  return "unknown";
}

provider_options::~provider_options() = default;

bool tracing_config::operator==(const tracing_config& other) const {
  auto where = [](const tracing_config& t) {
    return t.collector ? t.collector->origin() + t.path : std::string{};
  };
  return where(*this) == where(other) && headers == other.headers
         && ca_file == other.ca_file && service_name == other.service_name
         && sample_ratio == other.sample_ratio
         && batch_spans == other.batch_spans && queue_spans == other.queue_spans
         && flush_interval == other.flush_interval && timeout == other.timeout;
}

std::string endpoint::origin() const {
  return (tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

std::string endpoint::host_header() const {
  auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if ((tls && port == 443) || (!tls && port == 80))
    return h;
  return h + ":" + std::to_string(port);
}

const model_config_ptr*
gateway_config::find_model(std::string_view alias) const {
  for (const auto& m : models)
    if (m->alias == alias)
      return &m;
  return nullptr;
}

const chain_config* gateway_config::find_chain(std::string_view name) const {
  for (const auto& c : routing.fallback_chains)
    if (c.name == name)
      return &c;
  return nullptr;
}

const team_config* gateway_config::find_team(std::string_view name) const {
  for (const auto& t : teams)
    if (t.name == name)
      return &t;
  return nullptr;
}

bool gateway_config::governed() const {
  for (const auto& k : server.api_keys)
    if (k.limits.any())
      return true;
  for (const auto& t : teams)
    if (t.limits.any())
      return true;
  return false;
}

bool same_upstream(const model_config& x, const model_config& y) {
  return x.alias == y.alias && x.provider == y.provider && x.model == y.model
         && x.options_fingerprint == y.options_fingerprint
         && x.api_key == y.api_key && x.base_url == y.base_url
         && x.ca_file == y.ca_file && x.timeout == y.timeout
         && x.connect_timeout == y.connect_timeout
         && x.first_byte_timeout == y.first_byte_timeout
         && x.idle_timeout == y.idle_timeout && x.max_retries == y.max_retries
         && x.max_concurrent == y.max_concurrent
         && x.default_max_tokens == y.default_max_tokens && x.tags == y.tags
         && x.endpoints == y.endpoints;
}

bool same_health(const health_config& x, const health_config& y) {
  return x.check_interval == y.check_interval
         && x.unhealthy_threshold == y.unhealthy_threshold
         && x.healthy_threshold == y.healthy_threshold
         && x.check_timeout == y.check_timeout && x.cooldown == y.cooldown;
}

unsigned available_cores() {
  // The CPUs this process may run on (taskset, cgroup cpusets), not the
  // machine's: a gateway pinned to one core should not start two io threads.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

/// Takes the scheme off `url`; sets `tls` and the scheme's default port.
bool take_scheme(std::string_view& url, endpoint& ep, std::string& why) {
  if (url.starts_with("https://")) {
    ep.tls = true;
    ep.port = 443;
    url.remove_prefix(8);
    return true;
  }
  if (url.starts_with("http://")) {
    ep.tls = false;
    ep.port = 80;
    url.remove_prefix(7);
    return true;
  }
  why = "must start with http:// or https://";
  return false;
}

/// Splits an authority into host and port; a host in brackets is an IPv6
/// address.
bool split_authority(std::string_view authority, std::string_view& host,
                     std::string_view& port, std::string& why) {
  host = authority;
  port = {};
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        why = "unexpected characters after the IPv6 address";
        return false;
      }
      port = rest.substr(1);
    }
  } else if (auto colon = authority.rfind(':');
             colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  return true;
}

/// Checks that a host is not empty and has no spaces, controls or slashes.
bool check_host(std::string_view host, std::string& why) {
  if (host.empty()) {
    why = "has no host";
    return false;
  }
  for (char c : host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '\\') {
      why = "has an invalid host";
      return false;
    }
  return true;
}

/// A port from 1 to 65535, all digits.
std::optional<uint16_t> parse_port(std::string_view port) {
  unsigned value = 0;
  auto [ptr, ec]
    = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0
      || value > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(value);
}

} // namespace

bool is_loopback_host(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]"
         || host == "::1";
}

std::optional<endpoint> parse_base_url(std::string_view url, std::string& why) {
  endpoint ep;
  if (!take_scheme(url, ep, why))
    return std::nullopt;
  auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  auto path
    = slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    why = "must not contain credentials (use api_key)";
    return std::nullopt;
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    why = "must not contain a query or a fragment";
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port;
  if (!split_authority(authority, host, port, why) || !check_host(host, why))
    return std::nullopt;
  if (!port.empty() || authority.ends_with(":")) {
    auto value = parse_port(port);
    if (!value) {
      why = "has an invalid port";
      return std::nullopt;
    }
    ep.port = *value;
  }
  ep.host = std::string{host};
  while (path.ends_with("/"))
    path.remove_suffix(1);
  ep.base_path = std::string{path};
  return ep;
}

namespace {

/// Collects every problem with its YAML path.
struct diagnostics {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;

  void fail(const std::string& path, const std::string& what) {
    errors.push_back(path + ": " + what);
  }

  void warn(const std::string& path, const std::string& what) {
    warnings.push_back(path + ": " + what);
  }
};

/// What a number may be: outside [min, max] it is meaningless and
/// refused; above `usual` it is valid but extreme, and loads with a
/// warning (pw-router's own configs must load unchanged).
template <class T>
struct int_range {
  T min;
  T max;
  T usual;
};

std::string join(const std::string& path, std::string_view key) {
  if (path.empty())
    return std::string{key};
  return path + "." + std::string{key};
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

/// Quotes a user value for an error message, shortened. A value whose
/// `${...}` could not be expanded is not shown: its text may be a secret.
std::string quoted(std::string_view value) {
  if (value.find("${") != std::string_view::npos)
    return "<value with an unexpanded ${...}>";
  constexpr size_t max_len = 40;
  std::string out = "\"";
  out.append(value.substr(0, max_len));
  if (value.size() > max_len)
    out.append("...");
  out.push_back('"');
  return out;
}

std::string list_of(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty())
      out += ", ";
    out += n;
  }
  return out.empty() ? "none" : out;
}

/// Expands `${VAR}` in every scalar value (not in keys), in place.
void expand_tree(diagnostics& diag, YAML::Node node, const std::string& path,
                 const env_lookup& lookup) {
  if (node.IsScalar()) {
    const auto& text = node.Scalar();
    if (text.find("${") == std::string::npos)
      return;
    if (auto expanded = expand_env(text, lookup))
      node = *expanded;
    else
      diag.fail(path, message_of(expanded.error()));
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      expand_tree(diag, it->second, join(path, it->first.Scalar()), lookup);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      expand_tree(diag, node[i], index(path, i), lookup);
  }
}

/// Checks that `node` is a mapping with only `allowed` keys, each once.
bool check_map(diagnostics& diag, const YAML::Node& node,
               const std::string& path,
               std::span<const std::string_view> allowed) {
  if (!node.IsMap()) {
    diag.fail(path.empty() ? "config" : path,
              std::string{"expected a mapping, got "} + kind_name(node));
    return false;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      diag.fail(path, "keys must be scalars");
      continue;
    }
    const auto& key = it->first.Scalar();
    if (!seen.insert(key).second)
      diag.fail(join(path, key), "duplicate key");
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string names;
      for (auto a : allowed) {
        if (!names.empty())
          names += ", ";
        names += a;
      }
      diag.fail(join(path, key), "unknown key (allowed: " + names + ")");
    }
  }
  return true;
}

bool check_map(diagnostics& diag, const YAML::Node& node,
               const std::string& path,
               std::initializer_list<std::string_view> allowed) {
  return check_map(
    diag, node, path,
    std::span<const std::string_view>{allowed.begin(), allowed.size()});
}

/// Checks a mapping whose keys are names (models, chains): unique scalars.
bool check_named_map(diagnostics& diag, const YAML::Node& node,
                     const std::string& path) {
  if (!node.IsMap()) {
    diag.fail(path, std::string{"expected a mapping, got "} + kind_name(node));
    return false;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      diag.fail(path, "names must be non-empty scalars");
      continue;
    }
    if (!seen.insert(it->first.Scalar()).second)
      diag.fail(join(path, it->first.Scalar()), "duplicate key");
  }
  return true;
}

std::optional<std::string> get_string(diagnostics& diag, const YAML::Node& map,
                                      std::string_view key,
                                      const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  if (!n.IsScalar()) {
    diag.fail(join(path, key),
              std::string{"expected a string, got "} + kind_name(n));
    return std::nullopt;
  }
  return n.Scalar();
}

std::string require_string(diagnostics& diag, const YAML::Node& map,
                           std::string_view key, const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n)) {
    diag.fail(join(path, key), "required");
    return {};
  }
  auto s = get_string(diag, map, key, path);
  if (s && s->empty())
    diag.fail(join(path, key), "must not be empty");
  return s.value_or("");
}

template <class T>
std::optional<T> get_int(diagnostics& diag, const YAML::Node& map,
                         std::string_view key, const std::string& path,
                         int_range<T> range) {
  auto [min, max, usual] = range;
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (!n.IsScalar()) {
    diag.fail(where, std::string{"expected an integer, got "} + kind_name(n));
    return std::nullopt;
  }
  const auto& text = n.Scalar();
  long long value = 0;
  auto [ptr, ec]
    = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    diag.fail(where, "expected an integer (got " + quoted(text) + ")");
    return std::nullopt;
  }
  if (value < static_cast<long long>(min)) {
    diag.fail(where, "must be at least " + std::to_string(min) + " (got " + text
                       + ")");
    return std::nullopt;
  }
  if (static_cast<unsigned long long>(value)
      > static_cast<unsigned long long>(max)) {
    diag.fail(where,
              "must be at most " + std::to_string(max) + " (got " + text + ")");
    return std::nullopt;
  }
  if (static_cast<unsigned long long>(value)
      > static_cast<unsigned long long>(usual))
    diag.warn(where, "unusually large (" + text + ", more than "
                       + std::to_string(usual) + "); loaded as given");
  return static_cast<T>(value);
}

/// A range without a warning: every value inside it is ordinary.
template <class T>
int_range<T> plain(T min, T max) {
  return {min, max, max};
}

/// Reads a finite decimal number, with its text (for messages).
std::optional<std::pair<double, std::string>>
get_number(diagnostics& diag, const YAML::Node& map, std::string_view key,
           const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (!n.IsScalar()) {
    diag.fail(where, std::string{"expected a number, got "} + kind_name(n));
    return std::nullopt;
  }
  const auto& text = n.Scalar();
  double value = 0;
  auto [ptr, ec]
    = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()
      || !std::isfinite(value)) {
    diag.fail(where, "expected a number (got " + quoted(text) + ")");
    return std::nullopt;
  }
  return std::pair{value, text};
}

/// Reads a duration in seconds. `allow_zero` admits 0 (meaning "off").
std::optional<seconds_d> get_seconds(diagnostics& diag, const YAML::Node& map,
                                     std::string_view key,
                                     const std::string& path,
                                     bool allow_zero = false,
                                     bool allow_negative = false) {
  auto read = get_number(diag, map, key, path);
  if (!read)
    return std::nullopt;
  auto [value, text] = *read;
  auto where = join(path, key);
  if (!allow_negative && (value < 0 || (value == 0 && !allow_zero))) {
    diag.fail(where, std::string{"must be "} + (allow_zero ? ">= 0" : "> 0")
                       + " (got " + text + ")");
    return std::nullopt;
  }
  // Beyond a century a deadline would overflow the clocks it is added to.
  if (value > 86400.0 * 365 * 100) {
    diag.fail(where, "must be at most 100 years (got " + text + ")");
    return std::nullopt;
  }
  if (value > 86400.0)
    diag.warn(where, "unusually long (" + text
                       + " s, more than a day); loaded as given");
  return seconds_d{value};
}

std::optional<bool> get_bool(diagnostics& diag, const YAML::Node& map,
                             std::string_view key, const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (n.IsScalar()) {
    auto text = n.Scalar();
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (text == "true" || text == "yes" || text == "on")
      return true;
    if (text == "false" || text == "no" || text == "off")
      return false;
    diag.fail(where, "expected true or false (got " + quoted(n.Scalar()) + ")");
    return std::nullopt;
  }
  diag.fail(where, std::string{"expected true or false, got "} + kind_name(n));
  return std::nullopt;
}

/// Reads a non-negative decimal number (prices, budgets) up to `max`.
std::optional<double> get_amount(diagnostics& diag, const YAML::Node& map,
                                 std::string_view key, const std::string& path,
                                 double max) {
  auto read = get_number(diag, map, key, path);
  if (!read)
    return std::nullopt;
  auto [value, text] = *read;
  auto where = join(path, key);
  if (value < 0) {
    diag.fail(where, "expected a number >= 0 (got " + quoted(text) + ")");
    return std::nullopt;
  }
  if (value > max) {
    std::ostringstream m;
    m << "must be at most " << max << " (got " << text << ")";
    diag.fail(where, m.str());
    return std::nullopt;
  }
  return value;
}

/// USD -> pico-USD (10^-12 USD), rounded to the nearest.
uint64_t to_pico_usd(double usd) {
  return static_cast<uint64_t>(std::llround(usd * 1e12));
}

std::optional<std::vector<std::string>>
get_string_list(diagnostics& diag, const YAML::Node& map, std::string_view key,
                const std::string& path) {
  auto n = map[std::string{key}];
  if (is_absent(n))
    return std::nullopt;
  auto where = join(path, key);
  if (!n.IsSequence()) {
    diag.fail(where, std::string{"expected a list, got "} + kind_name(n));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar() || n[i].Scalar().empty()) {
      diag.fail(index(where, i), "expected a non-empty string");
      continue;
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20
           && static_cast<unsigned char>(c) < 0x7f;
  });
}

/// `server.tls`: the files are read when the listener starts (and on
/// SIGHUP), so that an unreadable or mismatched pair is reported there.
void load_tls(diagnostics& diag, const YAML::Node& node, tls_config& out) {
  const std::string path = "server.tls";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path, {"cert_file", "key_file", "min_version"}))
    return;
  out.cert_file = require_string(diag, node, "cert_file", path);
  out.key_file = require_string(diag, node, "key_file", path);
  if (auto v = get_string(diag, node, "min_version", path)) {
    if (*v == "1.2" || *v == "TLSv1.2")
      out.min_version = 12;
    else if (*v == "1.3" || *v == "TLSv1.3")
      out.min_version = 13;
    else
      diag.fail(join(path, "min_version"),
                "must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are never "
                "accepted) (got "
                  + quoted(*v) + ")");
  }
}

/// `server.host`, `server.port` and the thread counts.
void load_address_and_threads(diagnostics& diag, const YAML::Node& node,
                              const std::string& path, server_config& out) {
  if (auto host = get_string(diag, node, "host", path)) {
    if (host->empty())
      diag.fail("server.host", "must not be empty");
    out.host = *host;
  }
  if (auto port
      = get_int<uint16_t>(diag, node, "port", path, plain<uint16_t>(0, 65535)))
    out.port = *port;
  auto hw = available_cores();
  // Threads: one is the least that serves; thousands is a mistake the
  // machine would refuse anyway.
  out.io_threads
    = get_int<unsigned>(diag, node, "io_threads", path, {1u, 4096u, 256u})
        .value_or(hw);
  // 0 (the default): the actors run on the io threads. A count: a pool of
  // that many CAF threads sharing one queue, as before version 0.2.
  out.actor_threads
    = get_int<unsigned>(diag, node, "actor_threads", path, {0u, 4096u, 256u})
        .value_or(0u);
}

/// The sizes, timeouts and switches of `server`.
void load_server_limits(diagnostics& diag, const YAML::Node& node,
                        const std::string& path, server_config& out) {
  if (auto v = get_int<uint64_t>(diag, node, "max_body_bytes", path,
                                 {1, uint64_t{1} << 40, uint64_t{1} << 30}))
    out.max_body_bytes = *v;
  // Beast needs room for a request line and a few fields.
  if (auto v = get_int<uint32_t>(diag, node, "max_header_bytes", path,
                                 {1024u, 1u << 30, 1024u * 1024}))
    out.max_header_bytes = *v;
  if (auto v = get_seconds(diag, node, "header_timeout_seconds", path))
    out.header_timeout = *v;
  if (auto v = get_seconds(diag, node, "body_timeout_seconds", path))
    out.body_timeout = *v;
  if (auto v = get_seconds(diag, node, "keepalive_timeout_seconds", path))
    out.keepalive_timeout = *v;
  if (auto v = get_seconds(diag, node, "write_timeout_seconds", path))
    out.write_timeout = *v;
  if (auto v = get_int<uint32_t>(diag, node, "max_connections", path,
                                 {1u, 1u << 31, 1'000'000u}))
    out.max_connections = *v;
  if (auto v = get_seconds(diag, node, "drain_seconds", path, true))
    out.drain = *v;
  if (auto v = get_seconds(diag, node, "request_deadline_seconds", path))
    out.request_deadline = *v;
  if (auto v = get_bool(diag, node, "sched_batch", path))
    out.sched_batch = *v;
  if (auto v = get_bool(diag, node, "metrics_public", path))
    out.metrics_public = *v;
  if (auto v = get_string(diag, node, "health_details", path)) {
    if (*v == "admin" || *v == "public")
      out.health_details_public = *v == "public";
    else
      diag.fail(join(path, "health_details"),
                "must be \"admin\" (counters and errors need an admin key) "
                "or \"public\" (anyone who can connect sees them) (got "
                  + quoted(*v) + ")");
  }
}

/// Reads `key` or `key_sha256` into the digest (and the key); returns
/// whether the key was given as its digest.
bool load_key_secret(diagnostics& diag, const YAML::Node& entry,
                     const std::string& entry_path, api_key_config& key) {
  // The key itself never appears in a message: only its path does. A
  // key may be stored as its SHA-256 instead (`pw-router hash-key`).
  bool hashed = !is_absent(entry["key_sha256"]);
  if (hashed && !is_absent(entry["key"]))
    diag.fail(entry_path, "give key or key_sha256, not both");
  if (hashed) {
    auto hex = get_string(diag, entry, "key_sha256", entry_path);
    if (hex && !parse_sha256_hex(*hex, key.key_digest))
      diag.fail(join(entry_path, "key_sha256"),
                "must be 64 hexadecimal digits, the SHA-256 of the key "
                "(pw-router hash-key prints it)");
  } else {
    auto secret = require_string(diag, entry, "key", entry_path);
    key.key = redacted_string{secret};
    key.key_digest = sha256(secret);
  }
  return hashed;
}

/// `limits` of a key or a team: every field optional, none zero.
void load_limits(diagnostics& diag, const YAML::Node& node,
                 const std::string& path, usage_limits& out) {
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"requests_per_minute", "tokens_per_minute", "max_concurrent",
                  "tokens_per_day", "tokens_per_month",
                  "budget_usd_per_month"}))
    return;
  auto count = [&](std::string_view key) {
    return get_int<uint64_t>(diag, node, key, path,
                             plain<uint64_t>(1, uint64_t{1} << 50));
  };
  out.requests_per_minute = count("requests_per_minute");
  out.tokens_per_minute = count("tokens_per_minute");
  out.max_concurrent = count("max_concurrent");
  out.tokens_per_day = count("tokens_per_day");
  out.tokens_per_month = count("tokens_per_month");
  // Ten million USD a month is 10^19 pico-USD, inside 64 bits.
  if (auto usd = get_amount(diag, node, "budget_usd_per_month", path, 1e7)) {
    if (*usd <= 0)
      diag.fail(join(path, "budget_usd_per_month"),
                "must be more than 0 (got "
                  + quoted(node["budget_usd_per_month"].Scalar()) + ")");
    else
      out.budget_per_month = to_pico_usd(*usd);
  }
  if (!out.any() && node.size() == 0)
    diag.fail(path, "sets no limit (remove it, or set requests_per_minute, "
                    "tokens_per_minute, max_concurrent, tokens_per_day, "
                    "tokens_per_month or budget_usd_per_month)");
}

/// One entry of `server.api_keys`, refused as a duplicate of an earlier one.
void load_api_key(diagnostics& diag, const YAML::Node& entry,
                  const std::string& entry_path, const std::string& keys_path,
                  std::vector<api_key_config>& out) {
  if (!check_map(diag, entry, entry_path,
                 {"key", "key_sha256", "name", "allowed_models", "admin",
                  "team", "limits"}))
    return;
  api_key_config key;
  bool hashed = load_key_secret(diag, entry, entry_path, key);
  key.name = require_string(diag, entry, "name", entry_path);
  key.admin = get_bool(diag, entry, "admin", entry_path).value_or(false);
  if (auto team = get_string(diag, entry, "team", entry_path)) {
    if (!valid_name(*team))
      diag.fail(join(entry_path, "team"),
                "a team name must be 1 to 128 visible ASCII characters");
    key.team = *team;
  }
  load_limits(diag, entry["limits"], join(entry_path, "limits"), key.limits);
  auto globs = get_string_list(diag, entry, "allowed_models", entry_path);
  if (!globs) {
    if (is_absent(entry["allowed_models"]))
      diag.fail(join(entry_path, "allowed_models"),
                "required (use [\"*\"] to allow every model)");
  } else if (globs->empty()) {
    diag.fail(join(entry_path, "allowed_models"),
              "must not be empty (use [\"*\"] to allow every model)");
  } else {
    key.allowed_models = std::move(*globs);
  }
  for (size_t j = 0; j < out.size(); ++j) {
    if (key.key_digest != sha256_digest{}
        && out[j].key_digest == key.key_digest)
      diag.fail(join(entry_path, hashed ? "key_sha256" : "key"),
                "same key as " + index(keys_path, j));
    // Keys that share a name are one client: one set of counters.
    if (out[j].name == key.name
        && (out[j].team != key.team || !(out[j].limits == key.limits)))
      diag.fail(entry_path, "keys named " + quoted(key.name)
                              + " must have the same team and limits (see "
                              + index(keys_path, j) + ")");
  }
  out.push_back(std::move(key));
}

/// `server.api_keys`: a list of at least one key.
void load_api_keys(diagnostics& diag, YAML::Node keys,
                   const std::string& keys_path,
                   std::vector<api_key_config>& out) {
  if (is_absent(keys)) {
    diag.fail(keys_path, "required (at least one key)");
    return;
  }
  if (!keys.IsSequence()) {
    diag.fail(keys_path,
              std::string{"expected a list, got "} + kind_name(keys));
    return;
  }
  if (keys.size() == 0)
    diag.fail(keys_path, "must contain at least one key");
  for (size_t i = 0; i < keys.size(); ++i)
    load_api_key(diag, keys[i], index(keys_path, i), keys_path, out);
}

void load_server(diagnostics& diag, const YAML::Node& node,
                 server_config& out) {
  const std::string path = "server";
  if (is_absent(node)) {
    diag.fail(path, "required");
    return;
  }
  if (!check_map(diag, node, path,
                 {"host", "port", "api_keys", "io_threads", "actor_threads",
                  "max_body_bytes", "max_header_bytes",
                  "header_timeout_seconds", "body_timeout_seconds",
                  "keepalive_timeout_seconds", "write_timeout_seconds",
                  "max_connections", "drain_seconds",
                  "request_deadline_seconds", "sched_batch", "metrics_public",
                  "health_details", "tls"}))
    return;
  load_address_and_threads(diag, node, path, out);
  load_server_limits(diag, node, path, out);
  load_tls(diag, node["tls"], out.tls);
  load_api_keys(diag, node["api_keys"], join(path, "api_keys"), out.api_keys);
}

/// The names in `providers`, for messages: "openai, vllm, ...".
std::string provider_names(provider_catalog providers) {
  std::string out;
  for (const auto* p : providers) {
    if (!out.empty())
      out += ", ";
    out += p->name;
  }
  return out;
}

/// `provider`, looked up in `providers`; nullptr (reported) when unknown.
const provider_spec* load_provider(diagnostics& diag, const YAML::Node& node,
                                   const std::string& path,
                                   provider_catalog providers,
                                   model_config& m) {
  auto provider = require_string(diag, node, "provider", path);
  if (provider.empty())
    return nullptr;
  for (const auto* p : providers)
    if (p->name == provider) {
      m.provider = provider;
      return p;
    }
  auto hint = provider == "custom_http"
                ? std::string{" (custom_http is not supported; an "
                              "OpenAI-compatible server works as openai)"}
                : std::string{};
  diag.fail(join(path, "provider"), "unknown provider " + quoted(provider)
                                      + " (known: " + provider_names(providers)
                                      + ")" + hint);
  // Keep the model, so routing entries naming it add no false errors.
  return nullptr;
}

/// `base_url` (the provider's default when unset); a local provider takes
/// none. The endpoint is parsed from it later (parse_target), once the
/// provider's loader has had its say.
void load_base_url(diagnostics& diag, const YAML::Node& node,
                   const std::string& path, const provider_spec& spec,
                   model_config& m) {
  auto base_url = get_string(diag, node, "base_url", path);
  if (spec.local && base_url && !base_url->empty())
    diag.fail(join(path, "base_url"),
              "the " + m.provider + " provider takes no base_url");
  m.base_url = base_url && !base_url->empty()
                 ? *base_url
                 : std::string{spec.default_base_url};
}

/// The endpoint of `m.base_url` (required unless the provider is local).
void parse_target(diagnostics& diag, const std::string& path,
                  const provider_spec& spec, model_config& m) {
  if (spec.local)
    return;
  if (m.base_url.empty()) {
    diag.fail(join(path, "base_url"),
              "required for the " + m.provider + " provider");
    return;
  }
  std::string why;
  if (auto ep = parse_base_url(m.base_url, why))
    m.target = std::move(*ep);
  else if (m.base_url.find('@') != std::string::npos)
    diag.fail(join(path, "base_url"), why); // never echo credentials
  else
    diag.fail(join(path, "base_url"),
              why + " (got " + quoted(m.base_url) + ")");
}

/// The timeouts, limits and tags of a model.
void load_model_limits(diagnostics& diag, const YAML::Node& node,
                       const std::string& path, model_config& m) {
  if (auto v = get_seconds(diag, node, "timeout_seconds", path))
    m.timeout = *v;
  if (auto v = get_seconds(diag, node, "connect_timeout_seconds", path))
    m.connect_timeout = *v;
  m.first_byte_timeout
    = get_seconds(diag, node, "first_byte_timeout_seconds", path)
        .value_or(m.timeout);
  m.idle_timeout
    = get_seconds(diag, node, "idle_timeout_seconds", path).value_or(m.timeout);
  if (auto v = get_int<uint32_t>(diag, node, "max_concurrent", path,
                                 {0u, 1u << 31, 1'000'000u}))
    m.max_concurrent = *v;
  if (auto v
      = get_int<uint32_t>(diag, node, "max_retries", path, {0u, 1000u, 10u}))
    m.max_retries = *v;
  if (auto v = get_string_list(diag, node, "tags", path))
    m.tags = std::move(*v);
  if (auto v = get_int<uint64_t>(diag, node, "default_max_tokens", path,
                                 {1, uint64_t{1} << 32, 1'000'000}))
    m.default_max_tokens = *v;
}

/// `endpoints`: which client APIs the model serves (default: chat), each
/// one its provider can serve, none twice.
void load_endpoints(diagnostics& diag, const YAML::Node& node,
                    const std::string& path, const provider_spec& spec,
                    model_config& m) {
  auto names = get_string_list(diag, node, "endpoints", path);
  if (!names)
    return;
  auto where = join(path, "endpoints");
  if (names->empty()) {
    diag.fail(where, "must name at least one endpoint (chat, completions, "
                     "embeddings, messages)");
    return;
  }
  endpoint_set set;
  auto can = spec.endpoints;
  for (const auto& name : *names) {
    std::optional<api_endpoint> found;
    for (auto e : all_endpoints)
      if (configurable(e) && to_string(e) == name)
        found = e;
    if (!found) {
      diag.fail(where, "unknown endpoint " + quoted(name)
                         + " (known: chat, completions, embeddings, "
                           "messages)");
      continue;
    }
    if (set.has(*found))
      diag.fail(where, "endpoint " + quoted(name) + " listed twice");
    else if (!can.has(*found))
      diag.fail(where,
                "the " + m.provider + " provider cannot serve " + quoted(name));
    set.add(*found);
  }
  // Counting goes with the Messages API where the provider can count.
  if (set.has(api_endpoint::messages) && can.has(api_endpoint::count_tokens))
    set.add(api_endpoint::count_tokens);
  m.endpoints = set;
}

/// `ca_file`: a readable file, for an https base_url only.
void load_ca_file(diagnostics& diag, const YAML::Node& node,
                  const std::string& path, const provider_spec& spec,
                  model_config& m) {
  auto v = get_string(diag, node, "ca_file", path);
  if (!v || v->empty())
    return;
  if (spec.local)
    diag.fail(join(path, "ca_file"),
              "the " + m.provider + " provider takes no ca_file");
  else if (!std::ifstream{*v})
    diag.fail(join(path, "ca_file"), "cannot read " + quoted(*v));
  else if (!m.target.tls)
    diag.fail(join(path, "ca_file"), "set, but base_url is not https");
  m.ca_file = *v;
}

/// `pricing`: USD per million tokens; `input` and `output` required.
void load_pricing(diagnostics& diag, const YAML::Node& node,
                  const std::string& path, model_config& m) {
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path, {"input", "output", "cached_input"}))
    return;
  // A million USD per million tokens is beyond any real price list.
  constexpr double most = 1e6;
  auto per_token
    = [](double usd_per_million) { return to_pico_usd(usd_per_million / 1e6); };
  model_pricing p;
  auto input = get_amount(diag, node, "input", path, most);
  auto output = get_amount(diag, node, "output", path, most);
  if (is_absent(node["input"]))
    diag.fail(join(path, "input"), "required (USD per million tokens)");
  if (is_absent(node["output"]))
    diag.fail(join(path, "output"), "required (USD per million tokens)");
  p.input = per_token(input.value_or(0));
  p.output = per_token(output.value_or(0));
  p.cached_input = per_token(get_amount(diag, node, "cached_input", path, most)
                               .value_or(input.value_or(0)));
  m.pricing = p;
}

/// The keys every model may have, whatever its provider.
constexpr std::string_view common_model_keys[] = {"provider",
                                                  "model",
                                                  "api_key",
                                                  "base_url",
                                                  "timeout_seconds",
                                                  "connect_timeout_seconds",
                                                  "first_byte_timeout_seconds",
                                                  "idle_timeout_seconds",
                                                  "max_retries",
                                                  "max_concurrent",
                                                  "tags",
                                                  "ca_file",
                                                  "default_max_tokens",
                                                  "endpoints",
                                                  "pricing"};

/// The provider's own keys: read by its loader, and written down as the
/// fingerprint a reload compares.
void load_provider_keys(diagnostics& diag, const YAML::Node& node,
                        const std::string& path, const provider_spec& spec,
                        model_config& m) {
  YAML::Node own{YAML::NodeType::Map};
  for (auto key : spec.keys) {
    auto v = node[std::string{key}];
    if (v.IsDefined())
      own[std::string{key}] = v;
  }
  // A digest, so the secrets among them are not kept twice in the clear.
  m.options_fingerprint = to_hex(sha256(YAML::Dump(own)));
  if (spec.load == nullptr)
    return;
  std::vector<std::string> errors;
  config_reader reader{node, path, errors};
  m.options = spec.load(reader, m);
  for (auto& e : errors)
    diag.errors.push_back(std::move(e));
}

void load_model(diagnostics& diag, const std::string& alias,
                const YAML::Node& node, const std::string& path,
                provider_catalog providers,
                std::vector<model_config_ptr>& out) {
  auto m = std::make_shared<model_config>();
  m->alias = alias;
  if (!valid_name(alias))
    diag.fail(path, "a model name must be 1 to 128 visible ASCII characters");
  if (!node.IsMap()) {
    diag.fail(path, std::string{"expected a mapping, got "} + kind_name(node));
    return;
  }
  const auto* spec = load_provider(diag, node, path, providers, *m);
  if (spec == nullptr) {
    // Only the common keys can be told apart from typos.
    check_map(diag, node, path, common_model_keys);
    out.push_back(std::move(m));
    return;
  }
  std::vector<std::string_view> allowed{std::begin(common_model_keys),
                                        std::end(common_model_keys)};
  allowed.insert(allowed.end(), spec->keys.begin(), spec->keys.end());
  if (!check_map(diag, node, path, allowed))
    return;
  if (spec->default_model.empty())
    m->model = require_string(diag, node, "model", path);
  else
    m->model = get_string(diag, node, "model", path)
                 .value_or(std::string{spec->default_model});
  m->api_key
    = redacted_string{get_string(diag, node, "api_key", path).value_or("")};
  load_base_url(diag, node, path, *spec, *m);
  load_model_limits(diag, node, path, *m);
  load_endpoints(diag, node, path, *spec, *m);
  load_provider_keys(diag, node, path, *spec, *m);
  parse_target(diag, path, *spec, *m);
  load_ca_file(diag, node, path, *spec, *m);
  load_pricing(diag, node["pricing"], join(path, "pricing"), *m);
  m->local = spec->local;
  out.push_back(std::move(m));
}

void load_models(diagnostics& diag, const YAML::Node& node,
                 provider_catalog providers,
                 std::vector<model_config_ptr>& out) {
  if (is_absent(node)) {
    diag.fail("models", "required (at least one model)");
    return;
  }
  if (!check_named_map(diag, node, "models"))
    return;
  if (node.size() == 0)
    diag.fail("models", "must contain at least one model");
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar())
      continue;
    const auto& alias = it->first.Scalar();
    load_model(diag, alias, it->second, join("models", alias), providers, out);
  }
}

/// `routing.tag_override`: reroute or reject.
void load_tag_override(diagnostics& diag, const YAML::Node& node,
                       const std::string& path, routing_config& out) {
  auto v = get_string(diag, node, "tag_override", path);
  if (!v)
    return;
  if (*v == "reroute")
    out.on_tag_conflict = tag_override::reroute;
  else if (*v == "reject")
    out.on_tag_conflict = tag_override::reject;
  else
    diag.fail(join(path, "tag_override"),
              "expected reroute or reject (got " + quoted(*v) + ")");
}

/// Whether `name` is one of `names`.
bool is_listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

/// One fallback chain: a list of known models, each once. Returns nothing
/// when `list` is not a list.
std::optional<chain_config> load_chain(diagnostics& diag,
                                       const std::string& name, YAML::Node list,
                                       const std::string& chain_path,
                                       const std::vector<std::string>& names) {
  chain_config chain;
  chain.name = name;
  if (is_listed(names, chain.name))
    diag.fail(chain_path, "a chain must not have the name of a model");
  if (!valid_name(chain.name))
    diag.fail(chain_path,
              "a chain name must be 1 to 128 visible ASCII characters");
  if (!list.IsSequence()) {
    diag.fail(chain_path,
              std::string{"expected a list of models, got "} + kind_name(list));
    return std::nullopt;
  }
  if (list.size() == 0)
    diag.fail(chain_path, "must contain at least one model");
  for (size_t i = 0; i < list.size(); ++i) {
    auto member_path = index(chain_path, i);
    if (!list[i].IsScalar()) {
      diag.fail(member_path, "expected a model name");
      continue;
    }
    const auto& member = list[i].Scalar();
    if (!is_listed(names, member))
      diag.fail(member_path, "unknown model " + quoted(member)
                               + " (models: " + list_of(names) + ")");
    else if (is_listed(chain.members, member))
      diag.fail(member_path, "model " + quoted(member) + " listed twice");
    chain.members.push_back(member);
  }
  return chain;
}

/// `routing.fallback_chains`: named lists of models.
void load_chains(diagnostics& diag, YAML::Node chains,
                 const std::string& chains_path,
                 const std::vector<std::string>& names,
                 std::vector<chain_config>& out) {
  if (is_absent(chains) || !check_named_map(diag, chains, chains_path))
    return;
  for (auto it = chains.begin(); it != chains.end(); ++it) {
    if (!it->first.IsScalar())
      continue;
    auto name = it->first.Scalar();
    // `list` is a copy: the iterator's value is a temporary.
    if (auto chain
        = load_chain(diag, name, it->second, join(chains_path, name), names))
      out.push_back(std::move(*chain));
  }
}

/// One entry of `routing.rules`: a tag to match and a known chain.
void load_rule(diagnostics& diag, const YAML::Node& rule,
               const std::string& rule_path, routing_config& out) {
  if (!check_map(diag, rule, rule_path, {"match", "route_to_chain"}))
    return;
  rule_config out_rule;
  auto match = rule["match"];
  auto match_path = join(rule_path, "match");
  if (is_absent(match))
    diag.fail(match_path, "required");
  else if (check_map(diag, match, match_path, {"tag"}))
    out_rule.tag = require_string(diag, match, "tag", match_path);
  out_rule.chain = require_string(diag, rule, "route_to_chain", rule_path);
  if (!out_rule.chain.empty()) {
    auto found
      = std::any_of(out.fallback_chains.begin(), out.fallback_chains.end(),
                    [&](const auto& c) { return c.name == out_rule.chain; });
    if (!found)
      diag.fail(join(rule_path, "route_to_chain"),
                "unknown chain " + quoted(out_rule.chain));
  }
  out.rules.push_back(std::move(out_rule));
}

/// `routing.rules`: a list of rules.
void load_rules(diagnostics& diag, YAML::Node rules,
                const std::string& rules_path, routing_config& out) {
  if (is_absent(rules))
    return;
  if (!rules.IsSequence()) {
    diag.fail(rules_path,
              std::string{"expected a list, got "} + kind_name(rules));
    return;
  }
  for (size_t i = 0; i < rules.size(); ++i)
    load_rule(diag, rules[i], index(rules_path, i), out);
}

void load_routing(diagnostics& diag, const YAML::Node& node,
                  const std::vector<model_config_ptr>& models,
                  routing_config& out) {
  const std::string path = "routing";
  if (is_absent(node)) {
    diag.fail(path, "required (at least routing.default_model)");
    return;
  }
  if (!check_map(diag, node, path,
                 {"default_model", "fallback_chains", "rules", "tag_override"}))
    return;
  load_tag_override(diag, node, path, out);
  std::vector<std::string> names;
  for (const auto& m : models)
    names.push_back(m->alias);
  out.default_model = require_string(diag, node, "default_model", path);
  if (!out.default_model.empty() && !models.empty()
      && !is_listed(names, out.default_model))
    diag.fail("routing.default_model", "unknown model "
                                         + quoted(out.default_model)
                                         + " (models: " + list_of(names) + ")");
  load_chains(diag, node["fallback_chains"], join(path, "fallback_chains"),
              names, out.fallback_chains);
  load_rules(diag, node["rules"], join(path, "rules"), out);
}

void load_health(diagnostics& diag, const YAML::Node& node,
                 health_config& out) {
  const std::string path = "health";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"check_interval_seconds", "unhealthy_threshold",
                  "healthy_threshold", "check_timeout_seconds",
                  "cooldown_seconds"}))
    return;
  if (auto v = get_seconds(diag, node, "check_interval_seconds", path, true))
    out.check_interval = *v;
  if (auto v = get_int<uint32_t>(diag, node, "unhealthy_threshold", path,
                                 {1u, 1u << 31, 1000u}))
    out.unhealthy_threshold = *v;
  if (auto v = get_int<uint32_t>(diag, node, "healthy_threshold", path,
                                 {1u, 1u << 31, 1000u}))
    out.healthy_threshold = *v;
  if (auto v = get_seconds(diag, node, "check_timeout_seconds", path))
    out.check_timeout = *v;
  // pw-router's rule: the cooldown defaults to the check interval, and a
  // value <= 0 means 30 s.
  auto cooldown = get_seconds(diag, node, "cooldown_seconds", path, true, true);
  out.cooldown = cooldown.value_or(out.check_interval);
  if (out.cooldown.count() <= 0)
    out.cooldown = seconds_d{30};
}

void load_rate_limit(diagnostics& diag, const YAML::Node& node,
                     rate_limit_config& out) {
  const std::string path = "rate_limit";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"enabled", "max_requests", "window_seconds"}))
    return;
  out.enabled = get_bool(diag, node, "enabled", path).value_or(true);
  if (auto v = get_int<uint64_t>(diag, node, "max_requests", path,
                                 plain<uint64_t>(1, uint64_t{1} << 40)))
    out.max_requests = *v;
  if (auto v = get_seconds(diag, node, "window_seconds", path))
    out.window = *v;
}

/// `teams`: name -> {limits}.
void load_teams(diagnostics& diag, const YAML::Node& node,
                std::vector<team_config>& out) {
  const std::string path = "teams";
  if (is_absent(node) || !check_named_map(diag, node, path))
    return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    team_config t;
    t.name = it->first.Scalar();
    auto where = join(path, t.name);
    if (!valid_name(t.name))
      diag.fail(where, "a team name must be 1 to 128 visible ASCII characters");
    if (!check_map(diag, it->second, where, {"limits"}))
      continue;
    if (is_absent(it->second["limits"]))
      diag.fail(join(where, "limits"), "required");
    load_limits(diag, it->second["limits"], join(where, "limits"), t.limits);
    out.push_back(std::move(t));
  }
}

/// Every key's team is defined; a budget on models without a price is
/// said.
void check_governance(diagnostics& diag, const gateway_config& cfg) {
  for (size_t i = 0; i < cfg.server.api_keys.size(); ++i) {
    const auto& k = cfg.server.api_keys[i];
    if (!k.team.empty() && cfg.find_team(k.team) == nullptr)
      diag.fail(index("server.api_keys", i) + ".team",
                "unknown team " + quoted(k.team) + " (define it under teams)");
  }
  bool budget = false;
  for (const auto& k : cfg.server.api_keys)
    budget = budget || k.limits.budget_per_month.has_value();
  for (const auto& t : cfg.teams)
    budget = budget || t.limits.budget_per_month.has_value();
  if (!budget)
    return;
  for (const auto& m : cfg.models)
    if (!m->pricing && !m->local)
      diag.warn("models." + m->alias,
                "no pricing: its tokens cost nothing against "
                "budget_usd_per_month");
}

/// `state`: embedded (default) or redis.
void load_state(diagnostics& diag, const YAML::Node& node, state_config& out) {
  const std::string path = "state";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"backend", "path", "on_unavailable",
                  "journal_interval_seconds", "redis"}))
    return;
  if (auto b = get_string(diag, node, "backend", path)) {
    if (*b == "redis")
      out.backend = state_backend::redis;
    else if (*b != "embedded")
      diag.fail(join(path, "backend"),
                "expected embedded or redis (got " + quoted(*b) + ")");
  }
  out.path = get_string(diag, node, "path", path).value_or("");
  if (auto v = get_string(diag, node, "on_unavailable", path)) {
    if (*v == "allow")
      out.allow_when_unavailable = true;
    else if (*v != "deny")
      diag.fail(join(path, "on_unavailable"),
                "expected deny or allow (got " + quoted(*v) + ")");
  }
  if (auto v = get_seconds(diag, node, "journal_interval_seconds", path))
    out.journal_interval = *v;
  auto redis = node["redis"];
  auto rpath = join(path, "redis");
  if (out.backend == state_backend::redis && is_absent(redis))
    diag.fail(rpath, "required with backend: redis");
  if (is_absent(redis))
    return;
  if (out.backend != state_backend::redis)
    diag.fail(rpath, "set, but backend is not redis");
  if (!check_map(
        diag, redis, rpath,
        {"host", "port", "db", "password", "key_prefix", "timeout_ms"}))
    return;
  auto& r = out.redis;
  r.host = get_string(diag, redis, "host", rpath).value_or(r.host);
  if (auto v = get_int<uint16_t>(diag, redis, "port", rpath,
                                 plain<uint16_t>(1, 65535)))
    r.port = *v;
  if (auto v = get_int<uint32_t>(diag, redis, "db", rpath,
                                 plain<uint32_t>(0, 1u << 20)))
    r.db = *v;
  r.password
    = redacted_string{get_string(diag, redis, "password", rpath).value_or("")};
  if (auto v = get_string(diag, redis, "key_prefix", rpath)) {
    if (!valid_name(*v))
      diag.fail(join(rpath, "key_prefix"),
                "must be 1 to 128 visible ASCII characters");
    r.key_prefix = *v;
  }
  if (auto v = get_int<uint32_t>(diag, redis, "timeout_ms", rpath,
                                 {1u, 600'000u, 10'000u}))
    r.timeout = std::chrono::milliseconds{*v};
}

void load_plugins(diagnostics& diag, const YAML::Node& node,
                  const std::string& path, std::vector<plugin_entry>& out,
                  bool post) {
  if (is_absent(node))
    return;
  if (!node.IsSequence()) {
    diag.fail(path, std::string{"expected a list, got "} + kind_name(node));
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    auto entry_path = index(path, i);
    auto entry = node[i];
    if (!check_map(diag, entry, entry_path,
                   {"plugin", "config", "timeout_ms", "on_error", "stream",
                    "stream_window"}))
      continue;
    plugin_entry p;
    p.path = entry_path;
    p.plugin = require_string(diag, entry, "plugin", entry_path);
    if (auto v = get_int<uint32_t>(diag, entry, "timeout_ms", entry_path,
                                   {1u, 1u << 31, 600'000u}))
      p.timeout = std::chrono::milliseconds{*v};
    if (auto v = get_string(diag, entry, "on_error", entry_path)) {
      if (*v == "continue")
        p.fail_open = true;
      else if (*v != "block")
        diag.fail(join(entry_path, "on_error"),
                  "expected block or continue (got " + quoted(*v) + ")");
    }
    for (const char* key : {"stream", "stream_window"})
      if (!post && !is_absent(entry[key]))
        diag.fail(join(entry_path, key),
                  "only middleware.post_response entries treat streamed "
                  "answers");
    if (auto v = get_string(diag, entry, "stream", entry_path); v && post) {
      if (*v == "hold")
        p.stream = stream_mode::hold;
      else if (*v == "refuse")
        p.stream = stream_mode::refuse;
      else if (*v == "record")
        p.stream = stream_mode::record;
      else
        diag.fail(join(entry_path, "stream"),
                  "expected hold, refuse or record (got " + quoted(*v) + ")");
    }
    if (auto v = get_int<size_t>(
          diag, entry, "stream_window", entry_path,
          {min_stream_window, max_stream_window, max_stream_window});
        v && post)
      p.stream_window = *v;
    YAML::Emitter fingerprint;
    fingerprint << entry;
    p.fingerprint = fingerprint.c_str();
    auto cfg = entry["config"];
    if (!is_absent(cfg) && !cfg.IsMap())
      diag.fail(join(entry_path, "config"),
                std::string{"expected a mapping, got "} + kind_name(cfg));
    p.config = std::make_shared<const YAML::Node>(YAML::Clone(cfg));
    out.push_back(std::move(p));
  }
}

void load_middleware(diagnostics& diag, const YAML::Node& node,
                     middleware_config& out) {
  if (is_absent(node))
    return;
  if (!check_map(diag, node, "middleware", {"pre_request", "post_response"}))
    return;
  load_plugins(diag, node["pre_request"], "middleware.pre_request",
               out.pre_request, false);
  load_plugins(diag, node["post_response"], "middleware.post_response",
               out.post_response, true);
}

void load_logging(diagnostics& diag, const YAML::Node& node,
                  logging_config& out) {
  const std::string path = "logging";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"level", "format", "log_request_body", "log_response_body"}))
    return;
  if (auto level = get_string(diag, node, "level", path)) {
    auto l = *level;
    std::transform(l.begin(), l.end(), l.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (l == "debug")
      out.level = log_level::debug;
    else if (l == "info")
      out.level = log_level::info;
    else if (l == "warning" || l == "warn")
      out.level = log_level::warning;
    else if (l == "error" || l == "critical")
      out.level = log_level::error;
    else
      diag.fail("logging.level", "expected one of debug, info, warning, "
                                 "error (got "
                                   + quoted(*level) + ")");
  }
  if (auto format = get_string(diag, node, "format", path);
      format && *format != "json")
    diag.fail("logging.format",
              "only \"json\" is supported (got " + quoted(*format) + ")");
  if (auto v = get_bool(diag, node, "log_request_body", path))
    out.log_request_body = *v;
  if (auto v = get_bool(diag, node, "log_response_body", path))
    out.log_response_body = *v;
}

void load_tracing(diagnostics& diag, const YAML::Node& node,
                  tracing_config& out) {
  const std::string path = "tracing";
  if (is_absent(node))
    return;
  if (!check_map(diag, node, path,
                 {"endpoint", "headers", "ca_file", "service_name",
                  "sample_ratio", "batch_spans", "queue_spans",
                  "flush_interval_ms", "timeout_ms"}))
    return;
  auto url = require_string(diag, node, "endpoint", path);
  if (!url.empty()) {
    std::string why;
    auto target = parse_base_url(url, why);
    if (!target)
      diag.fail("tracing.endpoint", why);
    else if (!target->tls && !is_loopback_host(target->host))
      diag.fail("tracing.endpoint",
                "must be https (http only to a loopback host, for a "
                "collector beside the gateway)");
    else {
      out.path = target->base_path.empty() ? "/v1/traces" : target->base_path;
      out.collector = std::move(*target);
    }
  }
  auto headers = node["headers"];
  if (!is_absent(headers)) {
    if (!headers.IsMap()) {
      diag.fail("tracing.headers", "expected a mapping of header names to "
                                   "values");
    } else {
      for (auto it = headers.begin(); it != headers.end(); ++it) {
        auto name = it->first.Scalar();
        auto where = join("tracing.headers", name);
        if (!it->second.IsScalar()) {
          diag.fail(where, "expected a string");
          continue;
        }
        auto value = it->second.Scalar();
        if (name.empty() || name.find_first_of(":\r\n ") != std::string::npos
            || value.find_first_of("\r\n") != std::string::npos) {
          diag.fail(where, "invalid header name or value");
          continue;
        }
        out.headers.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  if (auto v = get_string(diag, node, "ca_file", path))
    out.ca_file = *v;
  if (auto v = get_string(diag, node, "service_name", path)) {
    if (v->empty() || v->size() > 256)
      diag.fail("tracing.service_name", "expected 1 to 256 characters");
    else
      out.service_name = *v;
  }
  if (auto v = get_amount(diag, node, "sample_ratio", path, 1.0))
    out.sample_ratio = *v;
  if (auto v = get_int<size_t>(diag, node, "batch_spans", path,
                               plain<size_t>(1, 100'000)))
    out.batch_spans = *v;
  if (auto v = get_int<size_t>(diag, node, "queue_spans", path,
                               plain<size_t>(1, 10'000'000)))
    out.queue_spans = *v;
  if (auto v = get_int<int64_t>(diag, node, "flush_interval_ms", path,
                                plain<int64_t>(10, 60'000)))
    out.flush_interval = std::chrono::milliseconds{*v};
  if (auto v = get_int<int64_t>(diag, node, "timeout_ms", path,
                                plain<int64_t>(1, 60'000)))
    out.timeout = std::chrono::milliseconds{*v};
}

caf::error to_error(const diagnostics& diag) {
  std::string text;
  for (const auto& e : diag.errors) {
    if (!text.empty())
      text.push_back('\n');
    text += e;
  }
  return make_error(errc::invalid_config, std::move(text));
}

} // namespace

caf::expected<gateway_config> load_config_text(std::string_view yaml,
                                               provider_catalog providers) {
  diagnostics diag;
  YAML::Node root;
  try {
    root = YAML::Load(std::string{yaml});
  } catch (const YAML::Exception& e) {
    diag.fail("config", "invalid YAML at line "
                          + std::to_string(e.mark.line + 1) + ", column "
                          + std::to_string(e.mark.column + 1) + ": " + e.msg);
    return to_error(diag);
  }
  if (is_absent(root) || !root.IsMap()) {
    diag.fail("config", "expected a mapping at the top level");
    return to_error(diag);
  }
  gateway_config cfg;
  try {
    expand_tree(diag, root, "", process_env);
    if (!check_map(diag, root, "",
                   {"server", "models", "routing", "health", "rate_limit",
                    "teams", "state", "middleware", "logging", "tracing"}))
      return to_error(diag);
    load_server(diag, root["server"], cfg.server);
    load_models(diag, root["models"], providers, cfg.models);
    load_routing(diag, root["routing"], cfg.models, cfg.routing);
    load_health(diag, root["health"], cfg.health);
    load_rate_limit(diag, root["rate_limit"], cfg.rate_limit);
    load_teams(diag, root["teams"], cfg.teams);
    load_state(diag, root["state"], cfg.state);
    check_governance(diag, cfg);
    load_middleware(diag, root["middleware"], cfg.middleware);
    load_logging(diag, root["logging"], cfg.logging);
    load_tracing(diag, root["tracing"], cfg.tracing);
    if (cfg.server.request_deadline.count() <= 0) {
      seconds_d longest{0};
      for (const auto& m : cfg.models)
        longest = std::max(longest, m->timeout);
      cfg.server.request_deadline = longest + seconds_d{10};
    }
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws only on misuse; keep it from escaping as a crash.
    diag.fail("config", std::string{"unexpected YAML structure: "} + e.msg);
  }
  if (!diag.errors.empty())
    return to_error(diag);
  cfg.source_sha256 = to_hex(sha256(yaml));
  cfg.warnings = std::move(diag.warnings);
  return cfg;
}

caf::expected<gateway_config> load_config(const std::string& path,
                                          provider_catalog providers) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::invalid_config,
                      path + ": cannot open the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_text(text.str(), providers);
}

} // namespace pw
