#include "plugins/pii/pii_plugin.hpp"

#include "core/config/config_reader.hpp"
#include "plugins/pii/pii_scanner.hpp"

#include <map>

namespace pw::plugins {

namespace {

using namespace pii;

enum class pii_action : uint8_t { tag, redact, block };

struct pii_settings {
  pii_action action = pii_action::tag;
  std::string tag = "pii";
  unsigned status = 403;
  std::string message;
};

/// The block message for the kinds found (`kinds`: "card, email").
std::string block_message(const pii_settings& s, const std::string& kinds,
                          std::string_view what) {
  return s.message.empty() ? "blocked by policy: personal data (" + kinds
                               + ") in the " + std::string{what}
                           : s.message;
}

/// `redact` and `block` on a held stream: the same scanner, over the held
/// text.
class pii_stream_rule final : public stream_rule {
public:
  pii_stream_rule(pii_settings settings, pii_scanner scanner)
      : settings_(std::move(settings)), scanner_(std::move(scanner)) {
    // nop
  }

  /// The longest finding is an e-mail address: a local part of at most 64
  /// bytes, `@` and a domain of at most 253; the checks around a finding
  /// read a character or two on each side.
  [[nodiscard]] size_t default_window() const override { return 320; }

  void find(std::string_view text, size_t from,
            std::vector<held_finding>& out) const override {
    for (const auto& f : scanner_.scan(text)) {
      if (f.offset + f.length <= from)
        continue; // sent already
      held_finding h;
      h.offset = f.offset;
      h.length = f.length;
      h.kind = std::string{to_string(f.kind)};
      if (settings_.action == pii_action::block) {
        h.block = true;
        h.message = block_message(settings_, h.kind, "response");
      } else {
        h.replacement = "[REDACTED:" + std::string{label(f.kind)} + "]";
      }
      out.push_back(std::move(h));
    }
  }

private:
  pii_settings settings_;
  pii_scanner scanner_;
};

class pii_plugin final : public plugin_logic {
public:
  pii_plugin(pii_settings settings, const pii_options& options)
      : settings_(std::move(settings)), scanner_(options) {
    // nop
  }

  [[nodiscard]] stream_support streams() const override {
    if (settings_.action == pii_action::tag)
      return {};
    return {true, std::make_shared<const pii_stream_rule>(settings_, scanner_)};
  }

  actors::plugin_verdict
  on_request(const actors::plugin_request& req) const override {
    if (!req.body)
      return {};
    return apply(req.body.get(), request_texts(*req.body, req.endpoint),
                 "request");
  }

  actors::plugin_verdict
  on_response(const actors::plugin_outcome& out) const override {
    if (auto doc = response_document(out))
      return apply(doc.get(), response_texts(*doc, out.request.endpoint),
                   "response");
    // A stream: the client has it already, the findings are recorded.
    if (out.streamed && !out.stream_text.empty())
      return apply(nullptr, {text_ref{{}, &out.stream_text}}, "response");
    return {};
  }

private:
  /// Scans `texts` (of `doc`, which may be changed or blocked; null when
  /// only recording is possible).
  actors::plugin_verdict apply(const nlohmann::ordered_json* doc,
                               const std::vector<text_ref>& texts,
                               std::string_view what) const {
    actors::plugin_verdict v;
    std::map<std::string_view, uint64_t> counts;
    std::vector<std::vector<pii_finding>> found(texts.size());
    bool any = false;
    for (size_t i = 0; i < texts.size(); ++i) {
      found[i] = scanner_.scan(*texts[i].text);
      for (const auto& f : found[i])
        ++counts[to_string(f.kind)];
      any = any || !found[i].empty();
    }
    if (!any)
      return v;
    auto& record = v.metadata["pii_" + std::string{what}];
    std::string kinds;
    for (const auto& [kind, n] : counts) {
      record[std::string{kind}] = n;
      kinds += (kinds.empty() ? "" : ", ") + std::string{kind};
    }
    if (settings_.action == pii_action::tag) {
      v.tags.push_back(settings_.tag);
    } else if (doc == nullptr) {
      // Nothing to change any more.
    } else if (settings_.action == pii_action::redact) {
      auto changed = std::make_shared<nlohmann::ordered_json>(*doc);
      for (size_t i = 0; i < texts.size(); ++i)
        if (!found[i].empty())
          (*changed)[texts[i].where.pointer()]
            = pii_scanner::redact(*texts[i].text, found[i]);
      v.body = std::move(changed);
    } else {
      v.block = true;
      v.status = settings_.status;
      v.message = block_message(settings_, kinds, what);
    }
    return v;
  }

  pii_settings settings_;
  pii_scanner scanner_;
};

} // namespace

plugin_logic_ptr make_pii_plugin(const plugin_entry& entry,
                                 std::vector<std::string>& errors) {
  config_reader cfg{entry, errors};
  if (!cfg.check_keys(cfg.root(), cfg.path(),
                      {"action", "tag", "kinds", "status", "message",
                       "phone_regions", "ssn_context"}))
    return nullptr;
  pii_settings s;
  if (auto action = cfg.string(cfg.root(), "action", cfg.path())) {
    if (*action == "tag")
      s.action = pii_action::tag;
    else if (*action == "redact")
      s.action = pii_action::redact;
    else if (*action == "block")
      s.action = pii_action::block;
    else
      cfg.fail(config_reader::join(cfg.path(), "action"),
               "expected tag, redact or block (got '" + *action + "')");
  }
  if (auto tag = cfg.string(cfg.root(), "tag", cfg.path())) {
    if (tag->empty())
      cfg.fail(config_reader::join(cfg.path(), "tag"), "must not be empty");
    s.tag = *tag;
  }
  if (auto status = cfg.integer(cfg.root(), "status", cfg.path(), 400, 599))
    s.status = static_cast<unsigned>(*status);
  s.message = cfg.string(cfg.root(), "message", cfg.path()).value_or("");
  pii_options options;
  auto& kinds = options.kinds;
  if (auto names = cfg.strings(cfg.root(), "kinds", cfg.path())) {
    kinds.clear();
    auto path = config_reader::join(cfg.path(), "kinds");
    if (names->empty())
      cfg.fail(path, "must name at least one kind (email, phone, card, "
                     "iban, ssn)");
    for (size_t i = 0; i < names->size(); ++i) {
      auto kind = parse_pii_kind((*names)[i]);
      if (!kind)
        cfg.fail(config_reader::index(path, i),
                 "unknown kind '" + (*names)[i]
                   + "' (known: email, phone, card, iban, ssn)");
      else
        kinds.push_back(*kind);
    }
  }
  // A list of strings, each checked by `problem` (nullopt when fine).
  auto checked_strings = [&](std::string_view key, auto problem) {
    auto values = cfg.strings(cfg.root(), key, cfg.path());
    auto path = config_reader::join(cfg.path(), key);
    for (size_t i = 0; values && i < values->size(); ++i)
      if (auto why = problem((*values)[i]))
        cfg.fail(config_reader::index(path, i), *why);
    return values;
  };
  // `phone_regions: []` keeps international numbers only; `ssn_context: []`
  // keeps only the separated SSN shapes.
  if (auto codes = checked_strings("phone_regions", region_problem))
    options.phone_regions = std::move(*codes);
  if (auto entries = checked_strings("ssn_context", context_problem))
    options.ssn_context = std::move(*entries);
  if (!cfg.ok())
    return nullptr;
  return std::make_shared<const pii_plugin>(std::move(s), options);
}

} // namespace pw::plugins
