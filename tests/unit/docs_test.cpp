// The docs name files: `core/json/reader.cpp`, [the guide](docs/x.md),
// `session_test.cpp`. A name that no longer exists (a file moved or gone)
// is a sentence that stopped being true; this test finds them in every
// Markdown file of the tree (README.md, docs/, the folder READMEs).

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path source_dir{PW_SOURCE_DIR};

/// Folders that hold no docs of ours: build trees, npm's, generated output.
bool skipped_dir(const fs::path& dir) {
  auto name = dir.filename().string();
  return name == ".git" || name == "node_modules" || name == "bench-results"
         || name == "corpus" || name.rfind("build", 0) == 0;
}

/// Every file under the source dir, outside skipped folders.
std::vector<fs::path> tree_files() {
  std::vector<fs::path> out;
  for (auto it = fs::recursive_directory_iterator{source_dir};
       it != fs::recursive_directory_iterator{}; ++it) {
    if (it->is_directory() && skipped_dir(it->path())) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file())
      out.push_back(it->path());
  }
  return out;
}

std::string read_all(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The `code spans` without blanks, and the targets of [links](...).
std::vector<std::string> named_things(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '`') {
      auto end = text.find('`', i + 1);
      if (end == std::string::npos)
        break;
      auto span = text.substr(i + 1, end - i - 1);
      if (!span.empty() && span.find_first_of(" \n\t") == std::string::npos)
        out.push_back(span);
      i = end;
    } else if (text.compare(i, 2, "](") == 0) {
      auto end = text.find(')', i + 2);
      if (end == std::string::npos)
        break;
      out.push_back(text.substr(i + 2, end - i - 2));
      i = end;
    }
  }
  return out;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size()
         && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool looks_like_file(const std::string& s) {
  static const std::vector<std::string_view> exts
    = {".cpp",  ".hpp", ".md",  ".yaml",    ".yml",  ".sh",   ".txt",
       ".json", ".js",  ".mjs", ".service", ".tmpl", ".conf", ".pem"};
  return std::any_of(exts.begin(), exts.end(),
                     [&](auto e) { return ends_with(s, e); });
}

bool looks_like_source(const std::string& s) {
  static const std::vector<std::string_view> exts
    = {".cpp", ".hpp", ".mjs", ".sh", ".tmpl", ".service"};
  return std::any_of(exts.begin(), exts.end(),
                     [&](auto e) { return ends_with(s, e); });
}

/// A name the check can judge: no placeholders, globs, options, URLs,
/// absolute paths or build outputs.
bool judged(std::string& name) {
  if (auto hash = name.find('#'); hash != std::string::npos)
    name.erase(hash);
  while (!name.empty()
         && std::string_view{".,:;"}.find(name.back())
              != std::string_view::npos)
    name.pop_back();
  if (name.empty()
      || name.front() == '.' && name.find('/') == std::string::npos)
    return false;
  if (name.find("://") != std::string::npos
      || name.find_first_of("*<>{}$=|[]()") != std::string::npos)
    return false;
  // ../shared/ is the workspace's folder beside the repository (the load
  // harness), not part of the tree.
  for (std::string_view lead :
       {"/", "-", "~", "build/", "bench-results/", "../shared/"})
    if (name.rfind(lead, 0) == 0)
      return false;
  return looks_like_file(name) || ends_with(name, "/");
}

/// What `doc` (whose text is `text`) names that is not in the tree.
std::vector<std::string> missing_in(const fs::path& doc,
                                    const std::string& text,
                                    const std::set<std::string>& basenames) {
  std::vector<std::string> missing;
  auto inside = [](const fs::path& p) {
    auto rel = p.lexically_relative(source_dir).string();
    return !rel.empty() && rel.rfind("..", 0) != 0;
  };
  for (auto name : named_things(text)) {
    if (!judged(name))
      continue;
    if (name.find('/') == std::string::npos) {
      // A bare source file name must be some file of the tree (a bare
      // `config.yaml` or `audit.jsonl` is the user's file, not ours).
      if (looks_like_source(name) && !basenames.count(name))
        missing.push_back(name);
      continue;
    }
    auto near = (doc.parent_path() / name).lexically_normal();
    auto from_top = (source_dir / name).lexically_normal();
    // A path that leaves the tree is not ours to check.
    if (!inside(near) && !inside(from_top))
      continue;
    if (!fs::exists(near) && !fs::exists(from_top))
      missing.push_back(name);
  }
  return missing;
}

} // namespace

TEST_CASE("every file the docs name exists", "[docs]") {
  std::set<std::string> basenames;
  std::vector<fs::path> docs;
  for (const auto& f : tree_files()) {
    basenames.insert(f.filename().string());
    if (f.extension() == ".md")
      docs.push_back(f);
  }
  REQUIRE(docs.size() >= 10); // README.md, docs/, the folder READMEs
  std::vector<std::string> missing;
  for (const auto& doc : docs)
    for (const auto& name : missing_in(doc, read_all(doc), basenames))
      missing.push_back(fs::relative(doc, source_dir).string() + ": " + name);
  for (const auto& m : missing)
    UNSCOPED_INFO("named in a doc but not in the tree: " << m);
  CHECK(missing.empty());
}

TEST_CASE("the docs check finds names that are gone, and only those",
          "[docs]") {
  const std::set<std::string> basenames{"reader.cpp", "session_test.cpp"};
  auto doc = source_dir / "core" / "README.md";
  auto missing = missing_in(
    doc,
    "See `core/json/reader.cpp`, `json/reader.hpp`, [the guide]"
    "(../docs/architecture.md#rooms), `session_test.cpp`; gone: "
    "`core/json_text.hpp`, [old](../docs/gone.md), `json_scan.cpp`. "
    "Not judged: `a b`, `--config`, `${VAR}`, `build/release/pw-router`, "
    "`*.yaml`, `https://example.com/x.md`, `../shared/bench/bench.sh`, "
    "`/etc/pw-router/config.yaml`, `config.yaml`.",
    basenames);
  CHECK(missing
        == std::vector<std::string>{"core/json_text.hpp", "../docs/gone.md",
                                    "json_scan.cpp"});
  // From the top README, ../docs/ leaves the tree (not judged); docs/ is in it.
  CHECK(missing_in(source_dir / "README.md", "[guide](../docs/architecture.md)",
                   basenames)
          .empty());
  CHECK(missing_in(source_dir / "README.md", "[guide](docs/architecture.md)",
                   basenames)
          .empty());
}
