#pragma once

// Helpers of the audit log's unit tests: a temporary directory, whole-file
// and line reads and writes, and a writer filled with numbered records.

#include "plugins/audit_log/audit_chain.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pw::test::audit_kit {

using namespace pw::plugins::audit;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it.
struct temp_dir {
  temp_dir() {
    auto pattern = (fs::temp_directory_path() / "pw-audit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      FAIL("mkdtemp failed");
    path = pattern;
  }

  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string file(const std::string& name) const {
    return (fs::path{path} / name).string();
  }

  std::string path;
};

inline std::string read_all(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline void write_all(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << text;
}

// Splits on '\n'; a last fragment without '\n' is kept as a line.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  auto text = read_all(path);
  size_t begin = 0;
  while (begin < text.size()) {
    auto end = text.find('\n', begin);
    if (end == std::string::npos) {
      lines.push_back(text.substr(begin));
      break;
    }
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

inline void write_lines(const std::string& path,
                        const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines)
    text += line + '\n';
  write_all(path, text);
}

inline json make_record(int n) {
  json record = json::object();
  record["event"] = "chat";
  record["n"] = n;
  record["key"] = "team-a";
  return record;
}

inline audit_writer open_writer(writer_options options) {
  auto writer = audit_writer::open(std::move(options));
  REQUIRE(writer);
  return std::move(*writer);
}

inline void append_records(audit_writer& writer, int from, int count) {
  for (int i = from; i < from + count; ++i) {
    auto hash = writer.append(make_record(i));
    REQUIRE(hash);
  }
}

// Writes a log of a header and `records` records at `path`.
inline void write_log(const std::string& path, int records) {
  auto writer = open_writer(writer_options{path});
  append_records(writer, 0, records);
}

// The files of a rotated log in rotation order: path.NNNNNN ascending, then
// path.
inline std::vector<std::string> rotation_order(const std::string& path) {
  std::vector<std::string> files;
  auto prefix = fs::path{path}.filename().string() + ".";
  for (const auto& entry : fs::directory_iterator{fs::path{path}.parent_path()})
    if (entry.path().filename().string().rfind(prefix, 0) == 0)
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  files.push_back(path);
  return files;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace pw::test::audit_kit
