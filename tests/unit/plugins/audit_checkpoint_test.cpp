#include "core/errc.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/audit_chain.hpp"
#include "plugins/audit_log/audit_verify.hpp"
#include "plugins/audit_log/checkpoint.hpp"
#include "tests/support/audit_kit.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

using namespace pw::test::audit_kit;

namespace {

// RFC 8032 section 7.1, TEST 2: its secret key as PKCS#8 PEM, the public
// key's id (SHA-256 of 3d4017c3...660c, first 16 hex digits), and the
// signature of the one-byte message 0x72.
constexpr std::string_view rfc8032_test2_pem
  = "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEzNCJso/5banbbDRuwRTg9bijGfNaumJNqM9u1PuKb7\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view rfc8032_test2_key_id = "39f713d0a644253f";
constexpr std::string_view rfc8032_test2_sig
  = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

using key_ptr = std::shared_ptr<const ed25519_key>;

key_ptr new_key() {
  auto key = ed25519_key::generate();
  REQUIRE(key);
  return std::make_shared<const ed25519_key>(std::move(*key));
}

// The public half of `key`, through a PEM file as verify-audit reads it.
key_ptr public_of(const ed25519_key& key, const temp_dir& dir) {
  auto path = dir.file("key-" + key.key_id() + ".pub");
  write_all(path, key.public_pem());
  auto pub = ed25519_key::load_public(path);
  REQUIRE(pub);
  CHECK_FALSE(pub->is_private());
  return std::make_shared<const ed25519_key>(std::move(*pub));
}

writer_options signed_options(const std::string& path, key_ptr key,
                              uint64_t every_lines = 3) {
  writer_options options{path};
  options.checkpoints.key = std::move(key);
  options.checkpoints.every_lines = every_lines;
  return options;
}

verify_result verify(const std::vector<std::string>& paths, key_ptr key,
                     const std::string& witness = "") {
  verify_options options;
  options.paths = paths;
  options.key = std::move(key);
  options.witness = witness;
  return verify_log(options);
}

// Sets each line's prev from `from` on to the hash of the line before, as
// someone who rewrites the log would; with `key` (someone who also holds
// the signing key) its checkpoints are signed again for their new place.
void rechain(std::vector<std::string>& lines, size_t from,
             const ed25519_key* key) {
  for (size_t i = from; i < lines.size(); ++i) {
    auto doc = json::parse(lines[i]);
    doc["prev"] = line_hash(lines[i - 1]);
    if (key != nullptr && is_checkpoint(doc)) {
      checkpoint_view v;
      REQUIRE(read_checkpoint(doc, v).empty());
      v.fields.head = doc["prev"];
      v.fields.line = i + 1;
      doc["head"] = v.fields.head;
      doc["line"] = v.fields.line;
      doc["sig"] = key->sign_hex(checkpoint_message(v.fields));
    }
    lines[i] = doc.dump();
  }
}

// A log of 12 records with a checkpoint every 3 and one at the end:
// checkpoints at lines 5, 9, 13 and 17. Returns the checkpoint lines.
std::vector<std::string> write_signed_log(const std::string& path,
                                          const key_ptr& key) {
  auto writer = open_writer(signed_options(path, key));
  append_records(writer, 0, 12);
  auto written = writer.checkpoint();
  REQUIRE(written);
  CHECK(*written);
  REQUIRE(writer.sync());
  return writer.take_checkpoints();
}

json record_at(const std::string& time) {
  json record = json::object();
  record["time"] = time;
  record["event"] = "chat";
  return record;
}

bool fsync_fails = false;

int switchable_fsync(int fd) {
  if (!fsync_fails)
    return ::fsync(fd);
  errno = EIO;
  return -1;
}

} // namespace

TEST_CASE("Ed25519 signs as RFC 8032 says, and verifies only its own "
          "signatures",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("rfc.pem");
  write_all(path, std::string{rfc8032_test2_pem});
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  auto key = ed25519_key::load_private(path);
  REQUIRE(key);
  CHECK(key->is_private());
  CHECK(key->key_id() == rfc8032_test2_key_id);
  CHECK(key->sign_hex("r") == rfc8032_test2_sig);
  auto pub = public_of(*key, dir);
  CHECK(pub->key_id() == rfc8032_test2_key_id);
  CHECK(pub->verify_hex("r", rfc8032_test2_sig));
  CHECK_FALSE(pub->verify_hex("s", rfc8032_test2_sig));
  CHECK_FALSE(pub->verify_hex("r", std::string(128, '0')));
  CHECK_FALSE(pub->verify_hex("r", "92a0"));
  CHECK(pub->sign_hex("r").empty());
  CHECK_FALSE(new_key()->verify_hex("r", rfc8032_test2_sig));
}

TEST_CASE("a private key file others can read, or not Ed25519, is refused",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("rfc.pem");
  write_all(path, std::string{rfc8032_test2_pem});
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto open = ed25519_key::load_private(path);
  REQUIRE_FALSE(open);
  CHECK(contains(pw::message_of(open.error()), "mode 0644); chmod 600 it"));

  auto missing = ed25519_key::load_private(dir.file("none.pem"));
  REQUIRE_FALSE(missing);
  CHECK(contains(pw::message_of(missing.error()), "cannot open"));

  // A public key where the private one belongs, and a P-256 key.
  auto pub_path = dir.file("pub.pem");
  write_all(pub_path, new_key()->public_pem());
  REQUIRE(::chmod(pub_path.c_str(), 0600) == 0);
  auto swapped = ed25519_key::load_private(pub_path);
  REQUIRE_FALSE(swapped);
  CHECK(contains(pw::message_of(swapped.error()), "not a PEM private key"));

  auto* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(ec != nullptr);
  auto* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, ec) == 1);
  char* data = nullptr;
  auto n = BIO_get_mem_data(bio, &data);
  auto ec_path = dir.file("ec.pub");
  write_all(ec_path, std::string(data, static_cast<size_t>(n)));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  auto wrong_type = ed25519_key::load_public(ec_path);
  REQUIRE_FALSE(wrong_type);
  CHECK(contains(pw::message_of(wrong_type.error()), "not an Ed25519 key"));
}

TEST_CASE("audit-key --generate writes a 0600 key and its .pub, never over "
          "a key, and prints the public key",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.key");
  std::ostringstream out;
  std::ostringstream err;
  REQUIRE(audit_key_command({"--generate", path}, out, err) == 0);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((path + ".pub").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  CHECK(out.str() == read_all(path + ".pub"));
  CHECK(out.str().starts_with("-----BEGIN PUBLIC KEY-----\n"));
  auto key = ed25519_key::load_private(path);
  REQUIRE(key);
  CHECK(contains(err.str(), "key id " + key->key_id()));

  // Printing the public key again gives the same text.
  std::ostringstream again;
  std::ostringstream again_err;
  CHECK(audit_key_command({path}, again, again_err) == 0);
  CHECK(again.str() == out.str());

  // An existing key is never replaced.
  auto before = read_all(path);
  std::ostringstream out2;
  std::ostringstream err2;
  CHECK(audit_key_command({"--generate", path}, out2, err2) == 1);
  CHECK(contains(err2.str(), "not replacing a key"));
  CHECK(read_all(path) == before);

  // A .pub in the way: no key is made at all.
  auto other = dir.file("other.key");
  write_all(other + ".pub", "not a key\n");
  std::ostringstream out4;
  std::ostringstream err4;
  CHECK(audit_key_command({"--generate", other}, out4, err4) == 1);
  CHECK(contains(err4.str(), other + ".pub exists (not replacing a key)"));
  CHECK_FALSE(fs::exists(other));

  std::ostringstream out3;
  std::ostringstream err3;
  CHECK(audit_key_command({}, out3, err3) == 2);
  CHECK(audit_key_command({"--generate"}, out3, err3) == 2);
  CHECK(contains(err3.str(), "usage: pw-router audit-key"));
}

TEST_CASE("the writer signs a checkpoint at least every N records, and the "
          "log verifies with the public key",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto handed = write_signed_log(path, key);
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 17);
  std::vector<size_t> at;
  for (size_t i = 0; i < lines.size(); ++i)
    if (looks_like_checkpoint(lines[i]))
      at.push_back(i + 1);
  CHECK(at == std::vector<size_t>{5, 9, 13, 17});
  // Each names its place and the head before it, and is what the witness
  // gets, in order.
  auto genesis = json::parse(lines[0])["genesis"];
  REQUIRE(handed.size() == 4);
  for (size_t k = 0; k < at.size(); ++k) {
    auto doc = json::parse(lines[at[k] - 1]);
    CHECK(is_checkpoint(doc));
    CHECK(doc["line"] == at[k]);
    CHECK(doc["head"] == line_hash(lines[at[k] - 2]));
    CHECK(doc["head"] == doc["prev"]);
    CHECK(doc["file_genesis"] == genesis);
    CHECK(doc["key_id"] == key->key_id());
    CHECK(doc["every_lines"] == 3);
    CHECK(doc["every_seconds"] == 60);
    CHECK(handed[k] == lines[at[k] - 1]);
  }
  auto result = verify({path}, public_of(*key, dir));
  INFO(result.file << ":" << result.line << ": " << result.why);
  CHECK(result.ok);
  CHECK(result.lines == 17);
  CHECK(result.checkpoints == 4);
  CHECK(result.uncovered == 0);

  // Nothing new: no checkpoint to write.
  auto writer = open_writer(signed_options(path, key));
  auto again = writer.checkpoint();
  REQUIRE(again);
  CHECK_FALSE(*again);
}

TEST_CASE("every rotated file ends with a checkpoint, and the files verify "
          "in order",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto options = signed_options(path, key, 1000);
  options.max_bytes = 4096;
  {
    auto writer = open_writer(options);
    for (int i = 0; i < 40; ++i) {
      auto record = make_record(i);
      record["pad"] = std::string(300, 'x');
      REQUIRE(writer.append(std::move(record)));
    }
  }
  auto files = rotation_order(path);
  REQUIRE(files.size() >= 3);
  for (size_t i = 0; i + 1 < files.size(); ++i)
    CHECK(looks_like_checkpoint(read_lines(files[i]).back()));
  auto result = verify(files, public_of(*key, dir));
  INFO(result.file << ":" << result.line << ": " << result.why);
  CHECK(result.ok);
  CHECK(result.checkpoints == files.size() - 1);
  // The live file's records are not covered yet, and say so.
  CHECK(result.uncovered > 0);
  CHECK(result.last_checkpoint.starts_with(files[files.size() - 2] + ":"));
}

TEST_CASE("reopened, the writer offers the last checkpoint again and covers "
          "records a crash left unsigned before the next one",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto handed = write_signed_log(path, key);
  {
    auto writer = open_writer(signed_options(path, key));
    CHECK(writer.take_checkpoints() == std::vector<std::string>{handed.back()});
    CHECK(writer.take_checkpoints().empty());
  }
  // Records written without a checkpoint (a crash before the timer, or a
  // log from before checkpoints were turned on).
  {
    auto unsigned_writer = open_writer(writer_options{path});
    append_records(unsigned_writer, 100, 2);
  }
  auto writer = open_writer(signed_options(path, key));
  CHECK(writer.take_checkpoints().empty());
  CHECK(writer.uncovered() == 2);
  REQUIRE(writer.append(make_record(200)));
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 21);
  auto cp = json::parse(lines[19]);
  CHECK(is_checkpoint(cp));
  CHECK(cp["head"] == line_hash(lines[18]));
  CHECK(cp["line"] == 20);
  auto result = verify({path}, public_of(*key, dir));
  INFO(result.file << ":" << result.line << ": " << result.why);
  CHECK(result.ok);
  CHECK(result.uncovered == 1);
}

TEST_CASE("a new interval after a restart is stated in a checkpoint before "
          "the records it governs",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  write_signed_log(path, key); // every 3 records, ends with a checkpoint
  {
    auto writer = open_writer(signed_options(path, key, 5));
    append_records(writer, 100, 5);
  }
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 23);
  auto restated = json::parse(lines[17]);
  CHECK(is_checkpoint(restated));
  CHECK(restated["every_lines"] == 5);
  auto r = verify({path}, public_of(*key, dir));
  INFO(r.file << ":" << r.line << ": " << r.why);
  CHECK(r.ok);
  CHECK(r.uncovered == 5);
}

TEST_CASE("a failed sync takes back the checkpoints it would have made "
          "durable",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto options = signed_options(path, new_key(), 2);
  options.sync = fsync_policy::interval;
  options.fsync_file = switchable_fsync;
  fsync_fails = false;
  auto writer = open_writer(options);
  append_records(writer, 0, 2);
  REQUIRE(writer.sync());
  auto synced = read_all(path);
  // The third record brings the checkpoint its two predecessors need.
  REQUIRE(writer.append(make_record(2)));
  CHECK(writer.uncovered() == 1);
  fsync_fails = true;
  CHECK_FALSE(writer.sync(true));
  fsync_fails = false;
  CHECK(read_all(path) == synced);
  CHECK(writer.take_checkpoints().empty());
  CHECK(writer.uncovered() == 2);
  // The checkpoint is due again, before the next record.
  REQUIRE(writer.append(make_record(3)));
  REQUIRE(writer.sync());
  auto handed = writer.take_checkpoints();
  REQUIRE(handed.size() == 1);
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 5);
  CHECK(handed[0] == lines[3]);
}

TEST_CASE("verify-audit names the file and line of a wrong key, a missing "
          "checkpoint and a checkpoint signed over another head",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  write_signed_log(path, key);
  auto original = read_lines(path);
  auto pub = public_of(*key, dir);

  SECTION("another key") {
    auto other = public_of(*new_key(), dir);
    auto r = verify({path}, other);
    CHECK_FALSE(r.ok);
    CHECK(r.file == path);
    CHECK(r.line == 5);
    CHECK(r.why.starts_with("signed by key id " + key->key_id()
                            + ", not by the key given"));
  }
  SECTION("a checkpoint deleted, the chain recomputed and the others signed "
          "again") {
    auto lines = original;
    lines.erase(lines.begin() + 8); // the checkpoint at line 9
    rechain(lines, 8, key.get());
    write_lines(path, lines);
    auto r = verify({path}, pub);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 9);
    CHECK(r.why
          == "4 records follow the checkpoint at " + path
               + ":5 without a new one (checkpoints every 3 records): a "
                 "checkpoint is missing");
  }
  SECTION("a checkpoint signed over another head") {
    auto lines = original;
    auto doc = json::parse(lines[4]);
    checkpoint_view v;
    REQUIRE(read_checkpoint(doc, v).empty());
    auto forged = v.fields;
    forged.head = std::string(64, 'a');
    doc["sig"] = key->sign_hex(checkpoint_message(forged));
    lines[4] = doc.dump();
    rechain(lines, 5, nullptr);
    write_lines(path, lines);
    auto r = verify({path}, pub);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 5);
    CHECK(r.why
          == "signature does not verify with the key given: the checkpoint "
             "was changed after it was signed");
  }
  SECTION("a checkpoint whose head is not the line before it") {
    auto lines = original;
    auto doc = json::parse(lines[8]);
    doc["head"] = line_hash(lines[2]);
    lines[8] = doc.dump();
    rechain(lines, 9, nullptr);
    write_lines(path, lines);
    auto r = verify({path}, pub);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 9);
    CHECK(r.why == "checkpoint head is not the hash of line 8");
  }
  SECTION("a checkpoint moved: its line number is signed") {
    auto lines = original;
    std::swap(lines[4], lines[3]);
    rechain(lines, 1, nullptr);
    write_lines(path, lines);
    auto r = verify({path}, pub);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 4);
    CHECK(r.why == "checkpoint head is not the hash of line 3");
  }
  SECTION("a log without checkpoints") {
    auto plain = dir.file("plain.jsonl");
    write_log(plain, 4);
    auto r = verify({plain}, pub);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 5);
    CHECK(r.why.starts_with("no checkpoint in the files given"));
    // Without a key the chain alone still verifies.
    CHECK(verify_files({plain}).ok);
  }
}

TEST_CASE("verify-audit fails a record written too long after the first one "
          "its checkpoint should cover",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto writer = open_writer(signed_options(path, key, 1000));
  REQUIRE(writer.append(record_at("2026-12-07T10:00:00.000Z")));
  REQUIRE(writer.checkpoint());
  REQUIRE(writer.append(record_at("2026-12-07T10:00:00.000Z")));
  REQUIRE(writer.append(record_at("2026-12-07T10:01:05.000Z"))); // 60 s + 5
  auto r = verify({path}, public_of(*key, dir));
  CHECK(r.ok);
  REQUIRE(writer.append(record_at("2026-12-07T10:01:05.001Z")));
  r = verify({path}, public_of(*key, dir));
  CHECK_FALSE(r.ok);
  CHECK(r.line == 6);
  CHECK(r.why
        == "written 65 s after " + path
             + ":4 with no checkpoint between (checkpoints every 60 s): a "
               "checkpoint is missing");
}

TEST_CASE("a tail rewritten with a recomputed chain and checkpoints signed "
          "again passes alone but fails against the witness's copy",
          "[audit][checkpoint][witness]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto handed = write_signed_log(path, key);
  auto witness = dir.file("witness.jsonl");
  write_lines(witness, handed);
  auto pub = public_of(*key, dir);
  auto original = read_lines(path);

  auto ok = verify({path}, pub, witness);
  INFO(ok.file << ":" << ok.line << ": " << ok.why);
  REQUIRE(ok.ok);
  CHECK(ok.witnessed == 4);

  SECTION("a record edited, everything after it recomputed and re-signed") {
    auto lines = original;
    auto doc = json::parse(lines[9]);
    doc["key"] = "someone-else";
    lines[9] = doc.dump();
    rechain(lines, 10, key.get());
    write_lines(path, lines);
    CHECK(verify({path}, pub).ok); // the key holder's rewrite verifies alone
    auto r = verify({path}, pub, witness);
    CHECK_FALSE(r.ok);
    CHECK(r.file == path);
    CHECK(r.line == 13);
    CHECK(r.why.starts_with("the checkpoint differs from the witness's copy ("
                            + witness + ":3): head "));
    CHECK(contains(r.why, "the lines before it were rewritten"));
  }
  SECTION("a record deleted, everything after it recomputed and re-signed") {
    auto lines = original;
    lines.erase(lines.begin() + 9);
    rechain(lines, 9, key.get());
    write_lines(path, lines);
    CHECK(verify({path}, pub).ok);
    auto r = verify({path}, pub, witness);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 13);
    CHECK(r.why
          == "the witness holds a checkpoint at this line (" + witness
               + ":3), but this line is not one: the log was rewritten");
  }
  SECTION("the tail cut off") {
    auto lines = original;
    lines.resize(10);
    write_lines(path, lines);
    CHECK(verify({path}, pub).ok);
    auto r = verify({path}, pub, witness);
    CHECK_FALSE(r.ok);
    CHECK(r.line == 10);
    CHECK(r.why
          == "the file ends at line 10, but the witness holds a checkpoint "
             "at its line 13 ("
               + witness + ":3): lines were cut off");
  }
  SECTION("the whole log replaced by a new one") {
    fs::remove(path);
    write_signed_log(path, key);
    auto r = verify({path}, pub, witness);
    CHECK_FALSE(r.ok);
    CHECK(r.file == witness);
    CHECK(r.line == 1);
    CHECK(r.why.starts_with("none of the witness's 4 checkpoints"));
  }
  SECTION("the witness's copy as syslog lines, with a late duplicate") {
    std::vector<std::string> syslog;
    for (const auto& line : handed)
      syslog.push_back("<110>1 2026-12-07T10:00:00.000Z gw1 pw-router - "
                       "checkpoint - "
                       + line);
    syslog.push_back("");
    syslog.push_back(syslog.front());
    write_lines(witness, syslog);
    auto r = verify({path}, pub, witness);
    INFO(r.file << ":" << r.line << ": " << r.why);
    CHECK(r.ok);
    CHECK(r.witnessed == 5);
  }
  SECTION("a witness line that is not a signed checkpoint") {
    auto forged = json::parse(handed[1]);
    forged["head"] = std::string(64, 'b');
    write_lines(witness, {handed[0], forged.dump()});
    auto r = verify({path}, pub, witness);
    CHECK_FALSE(r.ok);
    CHECK(r.file == witness);
    CHECK(r.line == 2);
    CHECK(contains(r.why, "signature does not verify"));
    write_lines(witness, {handed[0], "{\"hello\":1}"});
    r = verify({path}, pub, witness);
    CHECK(r.line == 2);
    CHECK(r.why == "not a checkpoint");
  }
}

TEST_CASE("the witness's checkpoints of older files not given are skipped, "
          "of files missing after them are not",
          "[audit][checkpoint][witness]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto options = signed_options(path, key, 2);
  options.max_bytes = 4096;
  std::vector<std::string> handed;
  {
    auto writer = open_writer(options);
    for (int i = 0; i < 40; ++i) {
      auto record = make_record(i);
      record["pad"] = std::string(300, 'x');
      REQUIRE(writer.append(std::move(record)));
      for (auto& line : writer.take_checkpoints())
        handed.push_back(std::move(line));
    }
  }
  auto witness = dir.file("witness.jsonl");
  write_lines(witness, handed);
  auto files = rotation_order(path);
  REQUIRE(files.size() >= 3);
  auto pub = public_of(*key, dir);
  auto all = verify(files, pub, witness);
  INFO(all.file << ":" << all.line << ": " << all.why);
  CHECK(all.ok);
  CHECK(all.witnessed == handed.size());

  // From the second file on: the first file's checkpoints are skipped.
  std::vector<std::string> later(files.begin() + 1, files.end());
  auto tail = verify(later, pub, witness);
  CHECK(tail.ok);
  CHECK(tail.witness_skipped > 0);
  CHECK(tail.witnessed + tail.witness_skipped == handed.size());

  // Without the live file: its checkpoints come after those given.
  std::vector<std::string> head(files.begin(), files.end() - 1);
  auto cut = verify(head, pub, witness);
  CHECK_FALSE(cut.ok);
  CHECK(cut.file == witness);
  CHECK(contains(cut.why, "after checkpoints of the files given: a later "
                          "file is missing, or a file was replaced"));
}

TEST_CASE("verify-audit with --pubkey and --witness prints what it checked",
          "[audit][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("audit.jsonl");
  auto key = new_key();
  auto handed = write_signed_log(path, key);
  auto witness = dir.file("witness.jsonl");
  write_lines(witness, {handed[0], handed[1]});
  auto pub_path = dir.file("audit.pub");
  write_all(pub_path, key->public_pem());
  {
    auto writer = open_writer(signed_options(path, key));
    append_records(writer, 50, 2);
  }
  std::ostringstream out;
  std::ostringstream err;
  REQUIRE(verify_audit_command(
            {"--pubkey", pub_path, "--witness", witness, path}, out, err)
          == 0);
  CHECK(out.str()
        == "ok 19 lines\n"
           "checkpoints: 4 verified with key id "
             + key->key_id()
             + "\n"
               "witness: 2 checkpoints matched\n"
               "not yet covered: 2 records after the checkpoint at "
             + path + ":17\n");

  std::ostringstream plain;
  CHECK(verify_audit_command({path}, plain, err) == 0);
  CHECK(plain.str()
        == "ok 19 lines\ncheckpoints: 4 not checked (no --pubkey)\n");

  std::ostringstream usage;
  CHECK(verify_audit_command({"--witness", witness, path}, out, usage) == 2);
  CHECK(verify_audit_command({"--pubkey"}, out, usage) == 2);
  CHECK(contains(usage.str(), "usage: pw-router verify-audit"));

  std::ostringstream bad;
  CHECK(verify_audit_command({"--pubkey", dir.file("none.pub"), path}, out, bad)
        == 1);
  CHECK(bad.str().starts_with(dir.file("none.pub") + ":0: "));
}
