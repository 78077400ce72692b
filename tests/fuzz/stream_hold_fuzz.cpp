// Fuzz target: the hold-back window of `stream: hold`
// (core/request/stream_guard.hpp). The first two bytes pick how the text is
// cut into pieces (anywhere, 1 to 128 bytes); the rest is the text.
//
// It checks, and aborts when it fails:
// - a `pii` redact stage sends exactly what the non-streamed redaction of
//   the whole text gives, however the text is cut;
// - a `regex` block stage sends exactly the text before the first match
//   and reports the block;
// and it runs the same bytes, as a provider's stream, through the guarded
// OpenAI and Anthropic decoders (crashes and sanitizer reports only).

#include "adapters/adapter.hpp"
#include "core/request/stream_guard.hpp"
#include "plugins/pii/pii_plugin.hpp"
#include "plugins/pii/pii_scanner.hpp"
#include "plugins/regex/regex_plugin.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

pw::stream_rule_ptr rule_of(std::string_view plugin, const char* yaml) {
  pw::plugin_entry e;
  e.plugin = std::string{plugin};
  e.path = "middleware.post_response[0]";
  e.config = std::make_shared<const YAML::Node>(YAML::Load(yaml));
  std::vector<std::string> errors;
  auto logic = plugin == "pii" ? pw::plugins::make_pii_plugin(e, errors)
                               : pw::plugins::make_regex_plugin(e, errors);
  if (!logic || !logic->streams().rule)
    std::abort();
  return logic->streams().rule;
}

pw::held_stages_ptr one_stage(pw::stream_rule_ptr rule) {
  auto window = rule->default_window();
  return std::make_shared<const pw::held_stages>(
    pw::held_stages{{std::move(rule), window, 0}});
}

const pw::held_stages_ptr& pii_stages() {
  static const auto stages = one_stage(rule_of("pii", "{action: redact}"));
  return stages;
}

const pw::held_stages_ptr& regex_stages() {
  static const auto stages = one_stage(
    rule_of("regex", "{rules: [{pattern: 'secret project', block: 403}]}"));
  return stages;
}

/// Cuts `text` into pieces whose sizes follow a small generator seeded by
/// `seed`, releasing after each piece, then to the end.
std::string through(const pw::held_stages_ptr& stages, std::string_view text,
                    uint16_t seed, bool& blocked) {
  pw::held_text h{stages};
  std::string out;
  uint32_t state = seed | 1u;
  size_t most = size_t{1} << (seed & 7); // 1 to 128 bytes
  bool ok = true;
  for (size_t at = 0; at < text.size() && ok;) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    auto n = std::min<size_t>(1 + state % most, text.size() - at);
    h.add(text.substr(at, n));
    at += n;
    ok = h.release(out, false);
  }
  if (ok)
    ok = h.release(out, true);
  blocked = !ok;
  return out;
}

pw::model_config_ptr model_of(std::string p) {
  auto m = std::make_shared<pw::model_config>();
  m->alias = "m";
  m->provider = p;
  m->api_key = pw::redacted_string{"sk-fuzz-key"};
  return m;
}

/// `bytes` as a provider's stream through a guarded decoder, in two
/// pieces.
void as_stream(std::string p, pw::api_endpoint endpoint,
               pw::stream_format format, std::string_view bytes, size_t split) {
  pw::stream_options options{"m", true, "req", 4096};
  auto inner = options;
  inner.keep_text = 0;
  auto stages = std::make_shared<const pw::held_stages>(pw::held_stages{
    {(*pii_stages())[0].rule, 32, 0}, {(*regex_stages())[0].rule, 16, 1}});
  auto decoder = pw::hold_stream(pw::adapters::adapter_for(p, endpoint)
                                   .make_stream_decoder(model_of(p), inner),
                                 format, options, stages);
  std::string out;
  decoder->feed(bytes.substr(0, split), out);
  decoder->feed(bytes.substr(split), out);
  decoder->finish(out);
  const auto& summary = decoder->summary();
  if (summary.policy_cut && summary.complete)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  auto seed = static_cast<uint16_t>(data[0] | (data[1] << 8));
  std::string_view text{reinterpret_cast<const char*>(data) + 2, size - 2};

  bool blocked = false;
  auto redacted = through(pii_stages(), text, seed, blocked);
  static const pw::plugins::pii::pii_scanner scanner{
    pw::plugins::pii::all_pii_kinds()};
  if (blocked
      || redacted
           != pw::plugins::pii::pii_scanner::redact(text, scanner.scan(text)))
    std::abort();

  auto kept = through(regex_stages(), text, seed, blocked);
  auto match = text.find("secret project");
  if (blocked != (match != std::string_view::npos)
      || kept != text.substr(0, match))
    std::abort();

  auto split = std::min<size_t>(data[0], text.size());
  as_stream("openai", pw::api_endpoint::chat, pw::stream_format::chat, text,
            split);
  as_stream("openai", pw::api_endpoint::completions,
            pw::stream_format::completions, text, split);
  as_stream("anthropic", pw::api_endpoint::chat, pw::stream_format::chat, text,
            split);
  as_stream("anthropic", pw::api_endpoint::messages,
            pw::stream_format::messages, text, split);
  return 0;
}
