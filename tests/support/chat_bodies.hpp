#pragma once

// The chat request bodies the tests of the fast paths (the Anthropic and
// the Bedrock Converse requests written from the bytes) hold to the
// document path: every request of the Anthropic golden files and of the
// chat_request_json fuzz corpus, and variants of the shapes the fast paths
// take and of some they leave to the documents.

#include "tests/support/golden.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace pw::test {

inline std::vector<std::string> chat_request_bodies() {
  std::vector<std::string> bodies;
  for (const auto& sub :
       {std::filesystem::path{PW_TEST_DATA_DIR} / "anthropic" / "request",
        std::filesystem::path{PW_SOURCE_DIR
                              "/tests/fuzz/corpus/chat_request_json"}})
    for (const auto& e : std::filesystem::directory_iterator(sub))
      if (e.is_regular_file())
        bodies.push_back(slurp(e.path()));
  for (const auto* variant : {
         R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
         R"({"messages":[{"role":"system","content":"be brief"},)"
         R"({"role":"developer","content":""},{"role":"user","content":"a"},)"
         R"({"role":"user","content":"b"},{"role":"assistant","content":null},)"
         R"({"role":"assistant","content":"c"},{"role":"user","content":""}],)"
         R"("temperature":0.7,"top_p":1,"max_tokens":64,"stream":true,)"
         R"("user":"u-1","n":null,"stop":null,"tools":null})",
         R"({"messages":[{"role":"system","content":"one"},)"
         R"({"role":"developer","content":"two \"quoted\" \u00e9"},)"
         R"({"role":"user","content":"x","name":"ann"}],)"
         R"("max_completion_tokens":5,"max_tokens":9,"temperature":1e-3,)"
         R"("stream":false,"user":null})",
         R"({"messages":[{"role":"assistant","content":"first"},)"
         R"({"role":"user","content":"then"}],"temperature":-0.0})",
         // The document form refuses or translates these itself.
         R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
         R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})",
         R"({"messages":[{"role":"user","content":"x"}],"n":2})",
         R"({"messages":[{"role":"user","content":"x"}],"stop":"END"})",
         R"({"messages":[{"role":"tool","content":"x","tool_call_id":"t"}]})",
         R"({"messages":[{"role":"user","content":[{"type":"text",)"
         R"("text":"x"}]}]})",
         R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
         R"({"messages":[{"role":"system","content":"only a system"}]})",
       })
    bodies.emplace_back(variant);
  return bodies;
}

} // namespace pw::test
