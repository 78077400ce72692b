// actors/contracts.hpp lists every message kind of the system as an atom.
// This test keeps that map honest: every atom has a handler in actors/ or
// plugins/, and a test that sends it, or (for the ones an actor sends
// itself or that come back through an io thread's callback) a named test
// case that cannot pass unless it is handled.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path source_dir{PW_SOURCE_DIR};

std::string read_all(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The atoms contracts.hpp declares (the aliases of CAF's own excluded).
std::vector<std::string> declared_atoms() {
  auto text = read_all(source_dir / "actors/contracts.hpp");
  std::regex decl{R"(using (\w+) = caf::atom_constant<caf::atom\(")"};
  std::vector<std::string> out;
  for (std::sregex_iterator it{text.begin(), text.end(), decl}, end; it != end;
       ++it)
    out.push_back((*it)[1]);
  return out;
}

/// The text of every C++ file under `dir` (recursively), but `skip`.
std::vector<std::pair<fs::path, std::string>>
sources(const fs::path& dir, const std::string& skip = "") {
  std::vector<std::pair<fs::path, std::string>> out;
  for (const auto& e : fs::recursive_directory_iterator{source_dir / dir}) {
    auto ext = e.path().extension();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp"))
      continue;
    if (!skip.empty() && e.path().filename() == skip)
      continue;
    out.emplace_back(e.path(), read_all(e.path()));
  }
  return out;
}

bool any_matches(const std::vector<std::pair<fs::path, std::string>>& files,
                 const std::regex& re) {
  for (const auto& [path, text] : files)
    if (std::regex_search(text, re))
      return true;
  return false;
}

bool any_contains(const std::vector<std::pair<fs::path, std::string>>& files,
                  const std::string& needle) {
  for (const auto& [path, text] : files)
    if (text.find(needle) != std::string::npos)
      return true;
  return false;
}

/// Atoms no test sends by name, and the test case (the first line of its
/// name) that hangs or fails unless the atom is handled.
const std::map<std::string, std::string> exercised_by{
  // The LEDGER's timer that ends holds nobody settles.
  {"expire", "a hold whose settlement never comes ends "},
  // The io thread's callback sends it with a failed exchange.
  {"upstream", "an upstream 5xx is a 502 and a model "},
  // The MODEL's health timer, and the check's answer through the io thread.
  {"probe", "the health loop checks on the clock and a "},
  {"checked", "the health loop checks on the clock and a "},
  // The SESSION's backoff timer.
  {"retry", "max_retries retries the same model after a "},
  // The audit PLUGIN's group commit: with `fsync: every` no request is
  // answered before its flush.
  {"flush", "after a crash tore its last line the audit log recovers, serves "},
  // The audit PLUGIN's checkpoint timer (the witness sender's checkpoints
  // come from the same test).
  {"checkpoint", "an idle log gets a checkpoint within every_seconds of "},
  // A SESSION's spans to the TRACER (the collector receives them).
  {"spans", "a fake OTLP collector receives each request's spans: plugin "},
  // The SUPERVISOR's timer that ends a replaced generation.
  {"retire", "a reload keeps unchanged MODELs and "},
};

} // namespace

TEST_CASE("every atom of contracts.hpp has a handler and a test",
          "[contracts]") {
  auto atoms = declared_atoms();
  REQUIRE(atoms.size() >= 10);
  auto handlers = sources("actors");
  for (auto& f : sources("plugins"))
    handlers.push_back(std::move(f));
  // The mock MODEL handles messages; it tests none.
  auto tests = sources("tests", "mock_model.hpp");
  for (const auto& atom : atoms) {
    if (atom == "get" || atom == "update")
      continue; // CAF's own atoms, checked below through their interfaces
    INFO("atom::" << atom);
    // A handler is a lambda whose first parameter is the atom.
    std::regex handler{R"(\]\s*\(\s*atom::)" + atom + R"(\b)"};
    CHECK(any_matches(handlers, handler));
    auto named = exercised_by.find(atom);
    if (named == exercised_by.end()) {
      CHECK(any_contains(tests, "atom::" + atom));
      continue;
    }
    // The named test must exist, and the atom must really be unnamed in
    // tests (else the entry is stale).
    CHECK(any_contains(tests, "\"" + named->second + "\""));
    CHECK_FALSE(any_contains(tests, "atom::" + atom + "_v"));
  }
}

TEST_CASE("CAF's own atoms in contracts.hpp have handlers and tests too",
          "[contracts]") {
  auto handlers = sources("actors");
  auto tests = sources("tests", "mock_model.hpp");
  // get: the ROUTER hands its rate windows over; update: a MODEL restarted.
  for (const std::string atom : {"get", "update"}) {
    INFO("atom::" << atom);
    std::regex handler{R"(\]\s*\(\s*atom::)" + atom + R"(\b)"};
    CHECK(any_matches(handlers, handler));
    CHECK(any_contains(tests, "atom::" + atom));
  }
}
