#include "plugins/audit_log/audit_verify.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "plugins/audit_log/audit_chain.hpp"
#include "plugins/audit_log/checkpoint.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <utility>

namespace pw::plugins::audit {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view version_key = "pw_audit";

bool is_hex64(const json& x) {
  return is_lower_hex(x, 64);
}

// Returns why `doc`, line 1 of a file, is not a valid header; "" when it is.
std::string check_header(const json& doc) {
  if (is_record(doc) || !doc.contains(version_key))
    return "missing header: line 1 is not a pw_audit header";
  const auto& version = doc[version_key];
  if (!version.is_number_integer() || version.get<int64_t>() != 1)
    return "unsupported pw_audit version " + pw::json::dump(version);
  if (!doc.contains("genesis") || !is_hex64(doc["genesis"]))
    return "header genesis is not 64 lowercase hex digits";
  if (!doc.contains("created") || !doc["created"].is_string())
    return "header created is not a string";
  if (!doc.contains("previous_file")
      || !(doc["previous_file"].is_string() || doc["previous_file"].is_null()))
    return "header previous_file is not a string or null";
  return {};
}

// Returns why `doc`, line 1 of a file, is broken; "" when it is fine.
// `before_hash` and `before_path` describe the previous file, if any.
std::string check_first_line(const json& doc,
                             const std::optional<std::string>& before_hash,
                             const std::string& before_path) {
  if (!doc.is_object())
    return "not a JSON object";
  if (auto why = check_header(doc); !why.empty())
    return why;
  if (!before_hash)
    return {};
  if (doc["genesis"] != *before_hash)
    return "genesis does not match the last line of " + before_path
           + " (a file is missing, out of order, or its last line was "
             "changed)";
  auto expected_name = base_name(before_path);
  if (doc["previous_file"] != expected_name)
    return "previous_file is " + pw::json::dump(doc["previous_file"])
           + ", expected \"" + expected_name + "\"";
  return {};
}

// Returns why `doc`, line `n` > 1 of a file, is broken; "" when it is fine.
// `prev_hash` is the hash of line n - 1.
std::string check_record(const json& doc, uint64_t n,
                         const std::string& prev_hash) {
  if (!doc.is_object())
    return "not a JSON object";
  if (!is_record(doc))
    return "not a record (\"prev\" is not its first field)";
  if (doc.begin().value() != prev_hash)
    return "prev does not match the hash of line " + std::to_string(n - 1)
           + " (a line was edited, deleted, inserted or reordered)";
  return {};
}

// Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fff]Z", the form
// the writer uses; nullopt for anything else.
std::optional<int64_t> parse_time_ms(const json& x) {
  if (!x.is_string())
    return std::nullopt;
  const auto& s = x.get_ref<const std::string&>();
  std::tm tm{};
  int ms = 0;
  char z = 0;
  if (s.size() == 20) {
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year,
                    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec, &z)
        != 7)
      return std::nullopt;
  } else if (s.size() == 24) {
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year,
                    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec, &ms, &z)
        != 8)
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (z != 'Z')
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1))
    return std::nullopt;
  return static_cast<int64_t>(secs) * 1000 + ms;
}

std::string where(const std::string& file, uint64_t line) {
  return file + ":" + std::to_string(line);
}

std::string short_hex(const std::string& hex) {
  return hex.substr(0, 16) + "...";
}

class verifier {
public:
  explicit verifier(const verify_options& options) : opts_(options) {
    // nop
  }

  verify_result run() {
    if (!read_files() || (opts_.key && !check_signed())
        || (!opts_.witness.empty() && !check_witness()))
      return result_;
    result_.ok = true;
    if (opts_.key && seen_) {
      result_.uncovered = since_;
      result_.last_checkpoint = last_checkpoint_;
    }
    return result_;
  }

private:
  struct file_info {
    std::string path;
    uint64_t lines = 0;
  };

  bool fail(const std::string& file, uint64_t line, std::string why) {
    result_.ok = false;
    result_.file = file;
    result_.line = line;
    result_.why = std::move(why);
    return false;
  }

  bool read_files() {
    // The previous file's last line hash and path, once there is one.
    std::optional<std::string> before_hash;
    std::string before_path;
    for (const auto& path : opts_.paths) {
      std::ifstream in{path, std::ios::binary};
      if (!in)
        return fail(path, 0, "cannot open");
      std::string line;
      std::string prev_hash;
      uint64_t n = 0;
      while (std::getline(in, line)) {
        ++n;
        if (in.eof())
          return fail(path, n, "incomplete line (no trailing newline)");
        auto doc = parse_line(line);
        auto why = n == 1 ? check_first_line(doc, before_hash, before_path)
                          : check_record(doc, n, prev_hash);
        if (why.empty() && n == 1)
          start_file(path, doc);
        else if (why.empty())
          why = is_checkpoint(doc) ? check_checkpoint(doc, path, n, prev_hash)
                                   : check_interval(doc, path, n);
        if (!why.empty())
          return fail(path, n, std::move(why));
        prev_hash = line_hash(line);
        ++result_.lines;
      }
      if (in.bad())
        return fail(path, n + 1, "read error");
      if (n == 0)
        return fail(path, 1, "empty file: missing header");
      files_[genesis_].lines = n;
      last_path_ = path;
      last_lines_ = n;
      before_hash = std::move(prev_hash);
      before_path = path;
    }
    return true;
  }

  void start_file(const std::string& path, const json& header) {
    genesis_ = header["genesis"].get<std::string>();
    if (files_.empty())
      first_has_previous_ = header["previous_file"].is_string();
    files_[genesis_] = file_info{path, 1};
  }

  // A checkpoint at line `n` of `path`; `prev_hash` is line n - 1's hash.
  std::string check_checkpoint(const json& doc, const std::string& path,
                               uint64_t n, const std::string& prev_hash) {
    ++result_.checkpoints;
    if (!opts_.key)
      return {};
    checkpoint_view v;
    if (auto why = read_checkpoint(doc, v); !why.empty())
      return why;
    const auto& f = v.fields;
    if (f.head != prev_hash)
      return "checkpoint head is not the hash of line " + std::to_string(n - 1);
    if (f.file_genesis != genesis_)
      return "checkpoint file_genesis is not this file's genesis";
    if (f.line != n)
      return "checkpoint says it is line " + std::to_string(f.line);
    if (f.every_lines == 0 || f.every_seconds == 0)
      return "checkpoint every_lines and every_seconds must be at least 1";
    if (auto why = check_signature(v); !why.empty())
      return why;
    seen_ = true;
    since_ = 0;
    first_uncovered_.reset();
    every_lines_ = f.every_lines;
    every_seconds_ = f.every_seconds;
    last_checkpoint_ = where(path, n);
    checkpoints_[{genesis_, n}] = std::move(v);
    return {};
  }

  std::string check_signature(const checkpoint_view& v) const {
    const auto& key = *opts_.key;
    if (v.key_id != key.key_id())
      return "signed by key id " + v.key_id + ", not by the key given (key id "
             + key.key_id() + ")";
    if (!key.verify_hex(checkpoint_message(v.fields), v.sig))
      return "signature does not verify with the key given: the checkpoint "
             "was changed after it was signed";
    return {};
  }

  // A record that is not a checkpoint: the interval since the last one.
  std::string check_interval(const json& doc, const std::string& path,
                             uint64_t n) {
    if (!opts_.key || !seen_)
      return {};
    ++since_;
    if (since_ > every_lines_)
      return std::to_string(since_) + " records follow the checkpoint at "
             + last_checkpoint_ + " without a new one (checkpoints every "
             + std::to_string(every_lines_)
             + " records): a checkpoint is missing";
    auto t = parse_time_ms(doc.value("time", json()));
    if (!t)
      return {};
    if (!first_uncovered_) {
      first_uncovered_ = std::make_pair(*t, where(path, n));
      return {};
    }
    auto limit_ms
      = static_cast<int64_t>((every_seconds_ + time_grace_seconds) * 1000);
    if (*t - first_uncovered_->first > limit_ms)
      return "written " + std::to_string((*t - first_uncovered_->first) / 1000)
             + " s after " + first_uncovered_->second
             + " with no checkpoint between (checkpoints every "
             + std::to_string(every_seconds_) + " s): a checkpoint is missing";
    return {};
  }

  bool check_signed() {
    if (result_.checkpoints == 0)
      return fail(last_path_, last_lines_,
                  "no checkpoint in the files given: the log is not signed "
                  "(is checkpoint set in the audit_log config?)");
    return true;
  }

  struct witnessed {
    uint64_t line = 0;
    checkpoint_view view;
  };

  bool read_witness(std::vector<witnessed>& out) {
    const auto& path = opts_.witness;
    std::ifstream in{path, std::ios::binary};
    if (!in)
      return fail(path, 0, "cannot open");
    std::string line;
    uint64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos)
        continue;
      // A line of JSON, or a syslog line whose message is the JSON.
      auto brace = line.find('{');
      if (brace == std::string::npos)
        return fail(path, n, "no checkpoint on this line");
      auto doc = parse_line(std::string_view{line}.substr(brace));
      if (!doc.is_object() || doc.value("event", json()) != "checkpoint")
        return fail(path, n, "not a checkpoint");
      witnessed w{n, {}};
      if (auto why = read_checkpoint(doc, w.view); !why.empty())
        return fail(path, n, why);
      if (auto why = check_signature(w.view); !why.empty())
        return fail(path, n, why);
      out.push_back(std::move(w));
    }
    if (in.bad())
      return fail(path, n + 1, "read error");
    if (out.empty())
      return fail(path, 0, "the witness's copy holds no checkpoint");
    return true;
  }

  bool check_witness() {
    std::vector<witnessed> entries;
    if (!read_witness(entries))
      return false;
    const auto& path = opts_.witness;
    size_t first_match = entries.size();
    for (size_t i = 0; i < entries.size() && first_match == entries.size(); ++i)
      if (files_.count(entries[i].view.fields.file_genesis) > 0)
        first_match = i;
    if (first_match == entries.size())
      return fail(path, entries.front().line,
                  "none of the witness's " + std::to_string(entries.size())
                    + " checkpoints is in the files given: the log was "
                      "replaced, or this is another log's witness copy");
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& w = entries[i];
      const auto& f = w.view.fields;
      auto at_witness = where(path, w.line);
      auto file = files_.find(f.file_genesis);
      if (file == files_.end()) {
        auto what = "a checkpoint of a file not given (file_genesis "
                    + short_hex(f.file_genesis) + ", line "
                    + std::to_string(f.line) + ")";
        if (i > first_match)
          return fail(path, w.line,
                      what
                        + " after checkpoints of the files given: a later "
                          "file is missing, or a file was replaced");
        if (!first_has_previous_)
          return fail(path, w.line,
                      what
                        + ", and the first file given has no previous file: "
                          "the log's files were replaced");
        ++result_.witness_skipped;
        continue;
      }
      const auto& info = file->second;
      if (f.line > info.lines)
        return fail(info.path, info.lines,
                    "the file ends at line " + std::to_string(info.lines)
                      + ", but the witness holds a checkpoint at its line "
                      + std::to_string(f.line) + " (" + at_witness
                      + "): lines were cut off");
      auto local = checkpoints_.find({f.file_genesis, f.line});
      if (local == checkpoints_.end())
        return fail(info.path, f.line,
                    "the witness holds a checkpoint at this line (" + at_witness
                      + "), but this line is not one: the log was rewritten");
      const auto& l = local->second;
      if (l.fields.head != f.head)
        return fail(info.path, f.line,
                    "the checkpoint differs from the witness's copy ("
                      + at_witness + "): head " + short_hex(l.fields.head)
                      + " here, " + short_hex(f.head)
                      + " at the witness: the lines before it were "
                        "rewritten");
      if (l.sig != w.view.sig)
        return fail(info.path, f.line,
                    "the checkpoint differs from the witness's copy ("
                      + at_witness
                      + ") in its signed fields: it was signed again");
      ++result_.witnessed;
    }
    return true;
  }

  const verify_options& opts_;
  verify_result result_;
  /// The current file's genesis; every file by genesis.
  std::string genesis_;
  std::map<std::string, file_info> files_;
  bool first_has_previous_ = false;
  std::string last_path_;
  uint64_t last_lines_ = 0;
  /// The checkpoints verified, by (file genesis, line).
  std::map<std::pair<std::string, uint64_t>, checkpoint_view> checkpoints_;
  /// Since the last checkpoint: whether there was one, its interval and
  /// place, the records after it and the first of them (time, place).
  bool seen_ = false;
  uint64_t every_lines_ = 0;
  uint64_t every_seconds_ = 0;
  std::string last_checkpoint_;
  uint64_t since_ = 0;
  std::optional<std::pair<int64_t, std::string>> first_uncovered_;
};

} // namespace

verify_result verify_log(const verify_options& options) {
  return verifier{options}.run();
}

verify_result verify_files(const std::vector<std::string>& paths) {
  verify_options options;
  options.paths = paths;
  return verify_log(options);
}

int verify_audit_command(const std::vector<std::string>& args,
                         std::ostream& out, std::ostream& err) {
  auto usage = [&] {
    err << "usage: pw-router verify-audit [--pubkey FILE [--witness FILE]] "
           "FILE...\n"
           "  verifies audit log files given oldest first "
           "(audit.jsonl.000001 ... audit.jsonl);\n"
           "  --pubkey checks the signed checkpoints with the public key "
           "(pw-router audit-key);\n"
           "  --witness holds the log to a witness's copy of its "
           "checkpoints\n";
    return 2;
  };
  verify_options options;
  std::string pubkey;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--pubkey" || a == "--witness") {
      if (i + 1 >= args.size())
        return usage();
      (a == "--pubkey" ? pubkey : options.witness) = args[++i];
    } else if (a.starts_with("--")) {
      return usage();
    } else {
      options.paths.push_back(a);
    }
  }
  if (options.paths.empty() || (!options.witness.empty() && pubkey.empty()))
    return usage();
  if (!pubkey.empty()) {
    auto key = ed25519_key::load_public(pubkey);
    if (!key) {
      err << pubkey << ":0: " << message_of(key.error()) << '\n';
      return 1;
    }
    options.key = std::make_shared<const ed25519_key>(std::move(*key));
  }
  auto result = verify_log(options);
  if (!result.ok) {
    err << result.file << ':' << result.line << ": " << result.why << '\n';
    return 1;
  }
  out << "ok " << result.lines << " lines\n";
  if (!options.key && result.checkpoints > 0)
    out << "checkpoints: " << result.checkpoints
        << " not checked (no --pubkey)\n";
  if (options.key)
    out << "checkpoints: " << result.checkpoints << " verified with key id "
        << options.key->key_id() << '\n';
  if (!options.witness.empty()) {
    out << "witness: " << result.witnessed << " checkpoints matched";
    if (result.witness_skipped > 0)
      out << ", " << result.witness_skipped << " of older files skipped";
    out << '\n';
  }
  if (options.key && result.uncovered > 0)
    out << "not yet covered: " << result.uncovered
        << " records after the checkpoint at " << result.last_checkpoint
        << '\n';
  return 0;
}

} // namespace pw::plugins::audit
