#include "core/policy/glob.hpp"

#include <catch2/catch.hpp>

using pw::glob_any;
using pw::glob_match;

TEST_CASE("globs match like shell patterns") {
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("gpt-*", "gpt-4o"));
  CHECK(glob_match("gpt-*", "gpt-"));
  CHECK_FALSE(glob_match("gpt-*", "claude-sonnet"));
  CHECK(glob_match("local-?", "local-1"));
  CHECK_FALSE(glob_match("local-?", "local-12"));
  CHECK(glob_match("*-mini", "gpt-4o-mini"));
  CHECK(glob_match("a*b*c", "a-b-c"));
  CHECK_FALSE(glob_match("a*b*c", "a-b-"));
  CHECK(glob_match("exact", "exact"));
  CHECK_FALSE(glob_match("exact", "exact2"));
  CHECK_FALSE(glob_match("Gpt-*", "gpt-4o")); // case-sensitive
}

TEST_CASE("bracket sets, ranges and complements") {
  CHECK(glob_match("model-[abc]", "model-b"));
  CHECK_FALSE(glob_match("model-[abc]", "model-d"));
  CHECK(glob_match("v[0-9]", "v7"));
  CHECK_FALSE(glob_match("v[0-9]", "vx"));
  CHECK(glob_match("v[!0-9]", "vx"));
  CHECK_FALSE(glob_match("v[!0-9]", "v3"));
  CHECK(glob_match("[[]x", "[x")); // "[" inside a set
  CHECK(glob_match("a[", "a["));   // unterminated: a literal '['
}

TEST_CASE("a pathological pattern stays fast") {
  std::string name(5000, 'a');
  std::string pattern;
  for (int i = 0; i < 50; ++i)
    pattern += "*a";
  pattern += "b";
  CHECK_FALSE(glob_match(pattern, name));
}

TEST_CASE("an allowlist matches if any glob matches") {
  std::vector<std::string> globs{"local-*", "echo"};
  CHECK(glob_any(globs, "echo"));
  CHECK(glob_any(globs, "local-llama"));
  CHECK_FALSE(glob_any(globs, "gpt-4o"));
  CHECK_FALSE(glob_any({}, "echo"));
}
