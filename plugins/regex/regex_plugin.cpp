#include "plugins/regex/regex_plugin.hpp"

#include "core/config/config_reader.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <memory>

namespace pw::plugins {

namespace {

/// Memory RE2 may use per pattern; a pattern that needs more is a config
/// error rather than a slow scan.
constexpr int64_t max_pattern_memory = 8 << 20;

struct regex_rule {
  std::unique_ptr<const RE2> re;
  std::string tag;
  unsigned block = 0;
  std::string message;
};

using rule_list = std::shared_ptr<const std::vector<regex_rule>>;

/// The block rules on a held stream: the stream ends before the earliest
/// match of any block rule, with that rule's message.
class regex_stream_rule final : public stream_rule {
public:
  explicit regex_stream_rule(rule_list rules) : rules_(std::move(rules)) {
    // nop
  }

  /// A pattern's longest match cannot be read off RE2; 256 bytes covers
  /// words, phrases and identifiers. Longer matches need `stream_window`.
  [[nodiscard]] size_t default_window() const override { return 256; }

  void find(std::string_view text, size_t from,
            std::vector<held_finding>& out) const override {
    const regex_rule* first = nullptr;
    re2::StringPiece earliest;
    re2::StringPiece whole{text.data(), text.size()};
    for (const auto& rule : *rules_) {
      if (rule.block == 0)
        continue;
      // The rule's first match that ends after `from`: one in the text sent
      // already (where the context may begin mid-word) must not hide it.
      re2::StringPiece match;
      size_t at = 0;
      bool found = false;
      while (at <= whole.size()
             && rule.re->Match(whole, at, whole.size(), RE2::UNANCHORED, &match,
                               1)) {
        auto end
          = static_cast<size_t>(match.data() - whole.data()) + match.size();
        if (end > from || (match.empty() && end == from && from == 0)) {
          found = true;
          break;
        }
        at = match.empty() ? end + 1 : end;
      }
      if (!found)
        continue;
      if (first == nullptr || match.data() < earliest.data()) {
        first = &rule;
        earliest = match;
      }
    }
    if (first == nullptr)
      return;
    held_finding f;
    f.offset = static_cast<size_t>(earliest.data() - whole.data());
    f.length = earliest.size();
    f.block = true;
    f.kind = "regex";
    f.message = first->message;
    out.push_back(std::move(f));
  }

private:
  rule_list rules_;
};

/// All rules in one automaton: a text is searched once for every rule,
/// where one search per rule and text took twice the time with two rules.
/// Null when the rules do not compile together within the memory bound
/// (each still searches alone then).
std::unique_ptr<const RE2::Set>
rule_set(const std::vector<std::string>& patterns) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(
    max_pattern_memory
    * static_cast<int64_t>(std::max<size_t>(patterns.size(), 1)));
  auto set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  for (const auto& p : patterns)
    if (set->Add(p, nullptr) < 0)
      return nullptr;
  if (!set->Compile())
    return nullptr;
  return set;
}

class regex_plugin final : public plugin_logic {
public:
  regex_plugin(std::vector<regex_rule> rules,
               std::unique_ptr<const RE2::Set> set)
      : rules_(
        std::make_shared<const std::vector<regex_rule>>(std::move(rules))),
        set_(std::move(set)) {
    // nop
  }

  [[nodiscard]] stream_support streams() const override {
    bool blocks = std::any_of(rules_->begin(), rules_->end(),
                              [](const auto& r) { return r.block != 0; });
    if (!blocks)
      return {};
    return {true, std::make_shared<const regex_stream_rule>(rules_)};
  }

  actors::plugin_verdict
  on_request(const actors::plugin_request& req) const override {
    if (!req.body)
      return {};
    return scan(request_texts(*req.body, req.endpoint), true);
  }

  actors::plugin_verdict
  on_response(const actors::plugin_outcome& out) const override {
    if (auto doc = response_document(out))
      return scan(response_texts(*doc, out.request.endpoint), true);
    if (out.streamed) {
      // The client has the stream: tags are recorded, a block is noted.
      text_ref whole{{}, &out.stream_text};
      auto v = scan({whole}, false);
      return v;
    }
    return {};
  }

private:
  /// Which rules match somewhere in `texts` (by rule index).
  std::vector<bool> hits(const std::vector<text_ref>& texts) const {
    std::vector<bool> hit(rules_->size(), false);
    if (set_) {
      std::vector<int> matched;
      bool complete = true;
      for (const auto& t : texts) {
        RE2::Set::ErrorInfo info{RE2::Set::kNoError};
        matched.clear();
        if (!set_->Match(*t.text, &matched, &info)
            && info.kind != RE2::Set::kNoError) {
          complete = false; // the automaton ran out of memory on this text
          break;
        }
        for (int i : matched)
          hit[static_cast<size_t>(i)] = true;
      }
      if (complete)
        return hit;
    }
    for (size_t i = 0; i < rules_->size(); ++i)
      hit[i] = std::any_of(texts.begin(), texts.end(), [&](const auto& t) {
        return RE2::PartialMatch(*t.text, *(*rules_)[i].re);
      });
    return hit;
  }

  actors::plugin_verdict scan(const std::vector<text_ref>& texts,
                              bool may_block) const {
    actors::plugin_verdict v;
    auto hit = hits(texts);
    for (size_t i = 0; i < rules_->size(); ++i) {
      const auto& rule = (*rules_)[i];
      if (!hit[i])
        continue;
      if (rule.block != 0) {
        if (may_block) {
          v.block = true;
          v.status = rule.block;
          v.message = rule.message;
          v.tags.clear();
          return v;
        }
        v.metadata["regex_block_after_stream"] = rule.message;
      }
      if (!rule.tag.empty()
          && std::find(v.tags.begin(), v.tags.end(), rule.tag) == v.tags.end())
        v.tags.push_back(rule.tag);
    }
    return v;
  }

  rule_list rules_;
  std::unique_ptr<const RE2::Set> set_;
};

} // namespace

plugin_logic_ptr make_regex_plugin(const plugin_entry& entry,
                                   std::vector<std::string>& errors) {
  config_reader cfg{entry, errors};
  if (!cfg.check_keys(cfg.root(), cfg.path(), {"rules"}))
    return nullptr;
  auto rules = cfg.root()["rules"];
  auto rules_path = config_reader::join(cfg.path(), "rules");
  if (!rules.IsDefined() || rules.IsNull()) {
    cfg.fail(rules_path, "required (a list of {pattern, tag} or {pattern, "
                         "block, message})");
    return nullptr;
  }
  if (!rules.IsSequence() || rules.size() == 0) {
    cfg.fail(rules_path, "expected a non-empty list");
    return nullptr;
  }
  std::vector<regex_rule> out;
  std::vector<std::string> patterns;
  for (size_t i = 0; i < rules.size(); ++i) {
    auto path = config_reader::index(rules_path, i);
    auto node = rules[i];
    if (!cfg.check_keys(node, path, {"pattern", "tag", "block", "message"}))
      continue;
    regex_rule rule;
    auto pattern = cfg.string(node, "pattern", path, true);
    rule.tag = cfg.string(node, "tag", path).value_or("");
    if (auto block = cfg.integer(node, "block", path, 400, 599))
      rule.block = static_cast<unsigned>(*block);
    rule.message
      = cfg.string(node, "message", path).value_or("blocked by policy");
    if (rule.tag.empty() && rule.block == 0 && !node["block"].IsDefined())
      cfg.fail(path, "needs a tag to add or a block status (400-599)");
    if (!pattern)
      continue;
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(max_pattern_memory);
    auto re = std::make_unique<const RE2>(*pattern, options);
    if (!re->ok()) {
      cfg.fail(config_reader::join(path, "pattern"),
               "invalid pattern '" + *pattern + "': " + re->error());
      continue;
    }
    rule.re = std::move(re);
    out.push_back(std::move(rule));
    patterns.push_back(*pattern);
  }
  if (!cfg.ok())
    return nullptr;
  return std::make_shared<const regex_plugin>(std::move(out),
                                              rule_set(patterns));
}

} // namespace pw::plugins
