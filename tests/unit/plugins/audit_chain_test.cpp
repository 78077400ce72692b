#include "core/errc.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/audit_chain.hpp"
#include "plugins/audit_log/audit_verify.hpp"
#include "tests/support/audit_kit.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <vector>

using namespace pw::plugins::audit;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

using namespace pw::test::audit_kit;

TEST_CASE("appended records form a chain that verifies", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto writer = open_writer(writer_options{path});
  std::vector<std::string> hashes;
  for (int i = 0; i < 5; ++i) {
    auto hash = writer.append(make_record(i));
    REQUIRE(hash);
    hashes.push_back(*hash);
  }
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 6);
  CHECK(read_all(path).back() == '\n');
  CHECK(writer.size() == fs::file_size(path));
  CHECK(writer.last_hash() == hashes.back());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  SECTION("line 1 is a header with a random genesis") {
    auto header = json::parse(lines[0]);
    std::vector<std::string> keys;
    for (auto it = header.begin(); it != header.end(); ++it)
      keys.push_back(it.key());
    CHECK(keys
          == std::vector<std::string>{"pw_audit", "genesis", "created",
                                      "previous_file"});
    CHECK(header["pw_audit"] == 1);
    CHECK(header["genesis"].get<std::string>().size() == 64);
    CHECK(header["previous_file"].is_null());
    auto created = header["created"].get<std::string>();
    REQUIRE(created.size() == 20);
    CHECK(created[10] == 'T');
    CHECK(created.back() == 'Z');
    // Another log gets another genesis.
    write_log(dir.file("other.jsonl"), 0);
    CHECK(json::parse(read_lines(dir.file("other.jsonl"))[0])["genesis"]
          != header["genesis"]);
  }
  SECTION("each record starts with prev, the hash of the line before") {
    for (size_t i = 1; i < lines.size(); ++i) {
      auto record = json::parse(lines[i]);
      REQUIRE(record.begin().key() == "prev");
      CHECK(record["prev"] == pw::plugins::audit::line_hash(lines[i - 1]));
      CHECK(hashes[i - 1] == line_hash(lines[i]));
      // The line is exactly ordered_json's compact dump.
      CHECK(record.dump() == lines[i]);
    }
    CHECK(lines[1].rfind(R"({"prev":")", 0) == 0);
    CHECK(contains(lines[1], R"(","event":"chat","n":0,"key":"team-a"})"));
  }
  SECTION("the file verifies") {
    auto result = verify_files({path});
    CHECK(result.ok);
    CHECK(result.lines == 6);
    CHECK(result.why.empty());
  }
}

TEST_CASE("line_hash is the lowercase hex SHA-256 of the line", "[audit]") {
  CHECK(line_hash("abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("append keeps the caller's field order and accepts an empty record",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto writer = open_writer(writer_options{path});
  json record = json::object();
  record["z"] = 1;
  record["a"] = json::array({"x", nullptr});
  REQUIRE(writer.append(record));
  REQUIRE(writer.append(json::object()));
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  CHECK(lines[1]
        == R"({"prev":")" + line_hash(lines[0]) + R"(","z":1,"a":["x",null]})");
  CHECK(lines[2] == R"({"prev":")" + line_hash(lines[1]) + R"("})");
  CHECK(verify_files({path}).ok);
}

TEST_CASE("append refuses a non-object and a record with its own prev",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto writer = open_writer(writer_options{path});
  append_records(writer, 0, 1);
  auto before = read_all(path);
  auto hash = writer.last_hash();
  auto not_object = writer.append(json::array({1, 2}));
  REQUIRE_FALSE(not_object);
  CHECK(pw::code_of(not_object.error()) == pw::errc::internal);
  json with_prev = json::object();
  with_prev["prev"] = "0000";
  CHECK_FALSE(writer.append(with_prev));
  CHECK(read_all(path) == before);
  CHECK(writer.last_hash() == hash);
  append_records(writer, 1, 1);
  CHECK(verify_files({path}).ok);
}

TEST_CASE("an edited line breaks the chain", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 5); // lines 1 (header) .. 6
  auto lines = read_lines(path);
  SECTION("an edit that keeps line 4 valid JSON is reported at line 5, whose "
          "prev no longer matches") {
    auto pos = lines[3].find(R"("n":2)");
    REQUIRE(pos != std::string::npos);
    lines[3][pos + 4] = '7';
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.file == path);
    CHECK(result.line == 5);
    CHECK(contains(result.why, "prev does not match the hash of line 4"));
    CHECK(result.lines == 4);
  }
  SECTION("an edit that breaks line 4's JSON is reported at line 4") {
    lines[3].back() = ']';
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.line == 4);
    CHECK(result.why == "not a JSON object");
  }
  SECTION("an edit of line 4's prev is reported at line 4") {
    auto& c = lines[3][9]; // first hex digit of prev
    c = c == '0' ? '1' : '0';
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.line == 4);
    CHECK(contains(result.why, "prev does not match the hash of line 3"));
  }
  SECTION("an edit of the header's genesis is reported at line 2") {
    auto pos = lines[0].find(R"("genesis":")");
    REQUIRE(pos != std::string::npos);
    auto& c = lines[0][pos + 15]; // inside the genesis hex
    c = c == '0' ? '1' : '0';
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.line == 2);
  }
}

TEST_CASE("a deleted line is reported where the next line now stands",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 5);
  auto lines = read_lines(path);
  lines.erase(lines.begin() + 3); // delete line 4
  write_lines(path, lines);
  auto result = verify_files({path});
  CHECK_FALSE(result.ok);
  // Old line 5 is now line 4; its prev is the hash of the deleted line.
  CHECK(result.line == 4);
  CHECK(contains(result.why, "prev does not match the hash of line 3"));
}

TEST_CASE("swapped lines are reported at the first of them", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 5);
  auto lines = read_lines(path);
  std::swap(lines[2], lines[3]); // swap lines 3 and 4
  write_lines(path, lines);
  auto result = verify_files({path});
  CHECK_FALSE(result.ok);
  CHECK(result.line == 3);
  CHECK(result.lines == 2);
}

TEST_CASE("a truncated last line is reported", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 5);
  auto text = read_all(path);
  SECTION("cut mid-way") {
    text.resize(text.size() - 20);
  }
  SECTION("only the final newline missing") {
    text.pop_back();
  }
  write_all(path, text);
  auto result = verify_files({path});
  CHECK_FALSE(result.ok);
  CHECK(result.line == 6);
  CHECK(result.why == "incomplete line (no trailing newline)");
  CHECK(result.lines == 5);
}

TEST_CASE("a missing or wrong header is reported at line 1", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 3);
  auto lines = read_lines(path);
  SECTION("header removed") {
    lines.erase(lines.begin());
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.line == 1);
    CHECK(contains(result.why, "missing header"));
  }
  SECTION("unknown version") {
    auto header = json::parse(lines[0]);
    header["pw_audit"] = 2;
    lines[0] = header.dump();
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK(result.line == 1);
    CHECK(contains(result.why, "version"));
  }
  SECTION("genesis not hex") {
    auto header = json::parse(lines[0]);
    header["genesis"] = "xyz";
    lines[0] = header.dump();
    write_lines(path, lines);
    auto result = verify_files({path});
    CHECK(result.line == 1);
    CHECK(contains(result.why, "genesis"));
  }
  SECTION("empty file") {
    write_all(path, "");
    auto result = verify_files({path});
    CHECK_FALSE(result.ok);
    CHECK(result.line == 1);
    CHECK(contains(result.why, "missing header"));
  }
}

TEST_CASE("rotation chains files that verify only in order and complete",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  const uint64_t max_bytes = 500;
  {
    auto writer = open_writer(writer_options{path, max_bytes});
    append_records(writer, 0, 20);
    CHECK(writer.size() == fs::file_size(path));
    CHECK(writer.last_hash() == line_hash(read_lines(path).back()));
  }
  auto files = rotation_order(path);
  REQUIRE(files.size() >= 4);
  CHECK(files[0] == path + ".000001");
  CHECK(files[1] == path + ".000002");
  CHECK(files[2] == path + ".000003");
  size_t lines = 0;
  for (const auto& file : files) {
    CHECK(fs::file_size(file) <= max_bytes);
    lines += read_lines(file).size();
  }
  CHECK(lines == 20 + files.size());
  SECTION("each rotated file's header names and chains to the previous file") {
    for (size_t i = 1; i < files.size(); ++i) {
      auto header = json::parse(read_lines(files[i])[0]);
      CHECK(header["genesis"] == line_hash(read_lines(files[i - 1]).back()));
      CHECK(header["previous_file"]
            == fs::path{files[i - 1]}.filename().string());
    }
  }
  SECTION("all files in order verify") {
    auto result = verify_files(files);
    CHECK(result.ok);
    CHECK(result.lines == lines);
  }
  SECTION("a middle file left out is reported at line 1 of the next") {
    auto gap = files;
    gap.erase(gap.begin() + 1);
    auto result = verify_files(gap);
    CHECK_FALSE(result.ok);
    CHECK(result.file == files[2]);
    CHECK(result.line == 1);
    CHECK(contains(result.why, "genesis does not match"));
  }
  SECTION("files out of order are reported") {
    auto swapped = files;
    std::swap(swapped[1], swapped[2]);
    auto result = verify_files(swapped);
    CHECK_FALSE(result.ok);
    CHECK(result.file == files[2]);
    CHECK(result.line == 1);
    auto reversed = std::vector<std::string>(files.rbegin(), files.rend());
    CHECK_FALSE(verify_files(reversed).ok);
  }
  SECTION("a renamed rotated file is reported by previous_file") {
    auto renamed = dir.file("renamed.jsonl");
    fs::rename(files[1], renamed);
    auto moved = files;
    moved[1] = renamed;
    auto result = verify_files(moved);
    CHECK_FALSE(result.ok);
    CHECK(result.file == files[2]);
    CHECK(result.line == 1);
    CHECK(contains(result.why, "previous_file"));
  }
  SECTION("a suffix of the log verifies, trusting its first genesis") {
    auto suffix = std::vector<std::string>(files.begin() + 1, files.end());
    CHECK(verify_files(suffix).ok);
  }
}

TEST_CASE("a record larger than max_bytes gets a file of its own", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  {
    auto writer = open_writer(writer_options{path, 100});
    for (int i = 0; i < 3; ++i) {
      json record = json::object();
      record["text"] = std::string(200, 'a' + i);
      REQUIRE(writer.append(record));
    }
  }
  auto files = rotation_order(path);
  REQUIRE(files.size() == 3);
  for (const auto& file : files)
    CHECK(read_lines(file).size() == 2);
  CHECK(verify_files(files).ok);
}

TEST_CASE("reopening an existing file continues its chain", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  std::string hash;
  {
    auto writer = open_writer(writer_options{path});
    append_records(writer, 0, 3);
    hash = writer.last_hash();
  }
  {
    auto writer = open_writer(writer_options{path, 0, fsync_policy::interval});
    CHECK(writer.last_hash() == hash);
    CHECK(writer.size() == fs::file_size(path));
    // A moved writer keeps the file and the chain.
    auto moved = std::move(writer);
    append_records(moved, 3, 3);
    CHECK(moved.sync());
  }
  auto lines = read_lines(path);
  CHECK(lines.size() == 7);
  CHECK(json::parse(lines[0]).contains("pw_audit"));
  CHECK_FALSE(json::parse(lines[4]).contains("pw_audit"));
  auto result = verify_files({path});
  CHECK(result.ok);
  CHECK(result.lines == 7);
}

TEST_CASE("reopening a header-only file continues after the header",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 0);
  {
    auto writer = open_writer(writer_options{path});
    CHECK(writer.last_hash() == line_hash(read_lines(path)[0]));
    append_records(writer, 0, 2);
  }
  CHECK(read_lines(path).size() == 3);
  CHECK(verify_files({path}).ok);
}

TEST_CASE("open chains to the newest rotated file when the current one is "
          "gone",
          "[audit]") {
  // As after a crash between rotation's rename and the new file's header.
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  {
    auto writer = open_writer(writer_options{path, 500});
    append_records(writer, 0, 10);
  }
  auto before = rotation_order(path);
  auto last_rotated = before[before.size() - 2];
  auto seq = std::stoi(last_rotated.substr(last_rotated.size() - 6));
  std::array<char, 16> suffix{};
  std::snprintf(suffix.data(), suffix.size(), ".%06d", seq + 1);
  fs::rename(path, path + suffix.data());
  {
    auto writer = open_writer(writer_options{path, 500});
    append_records(writer, 10, 2);
  }
  auto files = rotation_order(path);
  CHECK(files.size() == before.size() + 1);
  auto header = json::parse(read_lines(path)[0]);
  CHECK(header["previous_file"] == "audit.jsonl" + std::string{suffix.data()});
  CHECK(verify_files(files).ok);
}

TEST_CASE("open refuses a file whose last complete line is not a header or "
          "record",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 3);
  auto text = read_all(path);
  SECTION("last line not JSON") {
    text += "not json\n";
  }
  SECTION("last line neither header nor record") {
    text += "{\"n\":1}\n";
  }
  write_all(path, text);
  auto writer = audit_writer::open(writer_options{path});
  REQUIRE_FALSE(writer);
  CHECK(pw::code_of(writer.error()) == pw::errc::internal);
  CHECK(contains(pw::message_of(writer.error()), path));
  CHECK(read_all(path) == text);
}

TEST_CASE("a torn last line is moved aside and recorded, the log verifies",
          "[audit]") {
  // A crash in the middle of a write: the last line has no '\n'.
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 3);
  auto complete = read_all(path);
  const std::string torn = R"({"prev":"0123","event":"chat","n":)";
  write_all(path, complete + torn);
  auto writer = open_writer(writer_options{path});
  REQUIRE(writer.recovery());
  append_records(writer, 3, 1);
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 6); // header, 3 records, the recovery, 1 more
  CHECK(read_all(path).starts_with(complete));
  auto note = json::parse(lines[4]);
  CHECK(note["event"] == "audit_recovered");
  CHECK(note["torn_bytes"] == torn.size());
  CHECK(note["torn_sha256"] == pw::to_hex(pw::sha256(torn)));
  auto aside = dir.file(note["torn_file"].get<std::string>());
  CHECK(read_all(aside) == torn);
  CHECK((fs::status(aside).permissions() & fs::perms::all)
        == (fs::perms::owner_read | fs::perms::owner_write));
  auto result = verify_files({path});
  CHECK(result.ok);
  CHECK(result.lines == 6);
}

TEST_CASE("a torn header alone starts the file again", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_all(path, R"({"pw_audit":1,"gen)");
  auto writer = open_writer(writer_options{path});
  REQUIRE(writer.recovery());
  CHECK((*writer.recovery())["torn_bytes"] == 18);
  append_records(writer, 0, 2);
  auto result = verify_files({path});
  CHECK(result.ok);
  CHECK(result.lines == 4); // header, the recovery, 2 records
}

namespace {

bool fail_fsync = false;

int flaky_fsync(int fd) {
  if (fail_fsync) {
    errno = EIO;
    return -1;
  }
  return ::fsync(fd);
}

} // namespace

TEST_CASE("a failed sync cuts back the lines written since the last one",
          "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  writer_options options{path};
  options.sync = fsync_policy::interval;
  options.fsync_file = flaky_fsync;
  auto writer = open_writer(options);
  append_records(writer, 0, 2);
  REQUIRE(writer.sync());
  auto synced_size = writer.size();
  auto synced_hash = writer.last_hash();
  append_records(writer, 2, 2);
  fail_fsync = true;
  SECTION("rolled back: as if the unsynced lines were never written") {
    auto failed = writer.sync(true);
    fail_fsync = false;
    REQUIRE_FALSE(failed);
    CHECK(contains(pw::message_of(failed.error()), "cut back"));
    CHECK(writer.size() == synced_size);
    CHECK(fs::file_size(path) == synced_size);
    CHECK(writer.last_hash() == synced_hash);
    append_records(writer, 9, 1);
    auto result = verify_files({path});
    CHECK(result.ok);
    CHECK(result.lines == 4); // header, 2 synced records, 1 after
  }
  SECTION("kept: a later sync may still succeed") {
    auto failed = writer.sync(false);
    fail_fsync = false;
    REQUIRE_FALSE(failed);
    CHECK(writer.size() > synced_size);
    CHECK(writer.sync());
    CHECK(verify_files({path}).lines == 5);
  }
}

TEST_CASE("a short write is cut back and the writer can retry", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto writer = open_writer(writer_options{path});
  append_records(writer, 0, 2);
  auto size = writer.size();
  auto hash = writer.last_hash();
  rlimit old_limit{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  if (old_limit.rlim_max != RLIM_INFINITY && old_limit.rlim_max < size + 20)
    return; // nothing to test under such a limit
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  // Let the file grow by 20 bytes only: the next write(2) is short. No
  // assertion runs while the limit is low, since the reporter writes output.
  rlimit low = old_limit;
  low.rlim_cur = size + 20;
  auto limited = ::setrlimit(RLIMIT_FSIZE, &low) == 0;
  auto failed = writer.append(make_record(2));
  auto size_after = fs::file_size(path);
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE(limited);
  REQUIRE_FALSE(failed);
  CHECK(contains(pw::message_of(failed.error()), "short write"));
  CHECK(size_after == size);
  CHECK(writer.size() == size);
  CHECK(writer.last_hash() == hash);
  append_records(writer, 2, 2);
  auto result = verify_files({path});
  CHECK(result.ok);
  CHECK(result.lines == 5);
}

TEST_CASE("verify-audit prints ok or the first broken line", "[audit]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  write_log(path, 5);
  std::ostringstream out;
  std::ostringstream err;
  SECTION("a good log") {
    CHECK(verify_audit_command({path}, out, err) == 0);
    CHECK(out.str() == "ok 6 lines\n");
    CHECK(err.str().empty());
  }
  SECTION("a broken log") {
    auto lines = read_lines(path);
    lines.erase(lines.begin() + 3);
    write_lines(path, lines);
    CHECK(verify_audit_command({path}, out, err) == 1);
    CHECK(out.str().empty());
    CHECK(err.str()
          == path
               + ":4: prev does not match the hash of line 3 (a line was "
                 "edited, deleted, inserted or reordered)\n");
  }
  SECTION("a missing file") {
    auto missing = dir.file("nope.jsonl");
    CHECK(verify_audit_command({missing}, out, err) == 1);
    CHECK(err.str() == missing + ":0: cannot open\n");
  }
  SECTION("no files") {
    CHECK(verify_audit_command({}, out, err) == 2);
    CHECK(out.str().empty());
    CHECK(err.str().rfind("usage: pw-router verify-audit [--pubkey FILE", 0)
          == 0);
  }
}
