// AWS Signature Version 4 against AWS's published test suite
// (tests/data/sigv4/suite.json, whose `source` names where it comes from),
// and the event-stream framing Bedrock streams in: whole, split at every
// byte, with CRC errors and impossible lengths.

#include "adapters/bedrock/event_stream.hpp"
#include "adapters/bedrock/sigv4.hpp"
#include "tests/support/golden.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pw;
using namespace pw::adapters::bedrock;
using pw::test::load_json;

namespace {

const std::filesystem::path suite_file
  = std::filesystem::path{PW_SOURCE_DIR} / "tests/data/sigv4/suite.json";

/// The request of one suite case; the security token goes in only when it
/// is signed ("header-before"), as the suite's `creq` shows.
signable_request request_of(const nlohmann::json& t) {
  signable_request r;
  r.method = t["method"].get<std::string>();
  r.path = t["path"].get<std::string>();
  r.query = t["query"].get<std::string>();
  for (const auto& h : t["headers"]) {
    auto name = h[0].get<std::string>();
    if (t["name"] == "post-sts-header-after" && name == "X-Amz-Security-Token")
      continue;
    r.headers.push_back({name, h[1].get<std::string>()});
  }
  return r;
}

} // namespace

TEST_CASE("SigV4 matches every case of AWS's test suite",
          "[adapters][bedrock][sigv4]") {
  auto suite = load_json(suite_file);
  const auto& cfg = suite["config"];
  aws_credentials creds;
  creds.access_key_id = cfg["accessKeyId"].get<std::string>();
  creds.secret_access_key
    = redacted_string{cfg["secretAccessKey"].get<std::string>()};
  REQUIRE(suite["tests"].size() == 28);
  std::string date = "20150830T123600Z";
  auto region = cfg["region"].get<std::string>();
  auto service = cfg["service"].get<std::string>();
  auto scope = credential_scope(date, region, service);
  size_t signatures = 0;
  for (const auto& t : suite["tests"]) {
    auto name = t["name"].get<std::string>();
    INFO(name);
    auto r = request_of(t);
    auto body = t["body"].get<std::string>();
    r.payload = body;
    std::string signed_headers;
    auto creq = canonical_request(r, signed_headers);
    CHECK(creq == t["creq"].get<std::string>());
    auto sts = t["sts"].get<std::string>();
    // In the two form cases the published string to sign is not over the
    // published canonical request (its digest differs): only the
    // canonical request can be checked there, and the first one's
    // signature is over the request without Content-Length.
    bool consistent = sts.ends_with(sha256_hex(t["creq"].get<std::string>()));
    if (name.starts_with("post-x-www-form-urlencoded")) {
      CHECK_FALSE(consistent);
      if (name == "post-x-www-form-urlencoded") {
        std::erase_if(r.headers, [](const header_field& h) {
          return h.name == "Content-Length";
        });
        CHECK(authorization(r, creds, region, service, date)
              == t["authz"].get<std::string>());
      }
      continue;
    }
    CHECK(consistent);
    CHECK(string_to_sign(date, scope, creq) == sts);
    CHECK(authorization(r, creds, region, service, date)
          == t["authz"].get<std::string>());
    ++signatures;
  }
  CHECK(signatures == 26);
}

TEST_CASE("a signed request carries the date, the payload hash, the token "
          "and a signature over them",
          "[adapters][bedrock][sigv4]") {
  CHECK(amz_date(1440938160) == "20150830T123600Z");
  upstream_request out;
  std::string why;
  out.target
    = *parse_base_url("https://bedrock-runtime.us-east-1.amazonaws.com", why);
  out.method = "POST";
  out.path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
  out.body = R"({"messages":[]})";
  out.headers.push_back({"Content-Type", "application/json"});
  aws_credentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = redacted_string{"secret"};
  creds.session_token = redacted_string{"session-token"};
  sign(out, creds, "us-east-1", "bedrock", 1440938160);
  auto value = [&](std::string_view name) {
    for (const auto& h : out.headers)
      if (h.name == name)
        return h.value;
    return std::string{};
  };
  CHECK(value("Host") == "bedrock-runtime.us-east-1.amazonaws.com");
  CHECK(value("X-Amz-Date") == "20150830T123600Z");
  CHECK(value("X-Amz-Content-Sha256") == sha256_hex(out.body));
  CHECK(value("X-Amz-Security-Token") == "session-token");
  auto authz = value("Authorization");
  CHECK(authz.starts_with(
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;"
    "x-amz-date;x-amz-security-token, Signature="));
  // The path as sent is encoded once more in the canonical request.
  signable_request r;
  r.method = "POST";
  r.path = out.path;
  std::string names;
  auto creq = canonical_request(r, names);
  CHECK(creq.find("/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")
        != std::string::npos);
  // A different body or secret gives a different signature.
  auto again = out;
  again.headers.clear();
  again.body = R"({"messages":[1]})";
  again.headers.push_back({"Content-Type", "application/json"});
  sign(again, creds, "us-east-1", "bedrock", 1440938160);
  std::string other;
  for (const auto& h : again.headers)
    if (h.name == "Authorization")
      other = h.value;
  CHECK(other != authz);
}

TEST_CASE("event-stream messages decode whole and split at every byte",
          "[adapters][bedrock][event_stream]") {
  auto one = encode_event({{":event-type", "contentBlockDelta"},
                           {":message-type", "event"},
                           {":content-type", "application/json"}},
                          R"({"delta":{"text":"Hel"},"contentBlockIndex":0})");
  auto two
    = encode_event({{":event-type", "messageStop"}, {":message-type", "event"}},
                   R"({"stopReason":"end_turn"})");
  auto bytes = one + two;
  SECTION("whole") {
    event_stream_decoder d;
    std::vector<event_message> out;
    REQUIRE(d.feed(bytes, out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].header(":event-type") == "contentBlockDelta");
    CHECK(out[0].header(":content-type") == "application/json");
    CHECK(out[0].payload
          == R"({"delta":{"text":"Hel"},"contentBlockIndex":0})");
    CHECK(out[1].header(":event-type") == "messageStop");
    CHECK(out[1].header(":missing").empty());
    CHECK(d.pending() == 0);
  }
  SECTION("one byte at a time") {
    event_stream_decoder d;
    std::vector<event_message> out;
    for (char c : bytes)
      REQUIRE(d.feed(std::string_view{&c, 1}, out));
    REQUIRE(out.size() == 2);
    CHECK(out[1].payload == R"({"stopReason":"end_turn"})");
  }
  SECTION("split at every point") {
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      event_stream_decoder d;
      std::vector<event_message> out;
      REQUIRE(d.feed(std::string_view{bytes}.substr(0, cut), out));
      REQUIRE(d.feed(std::string_view{bytes}.substr(cut), out));
      REQUIRE(out.size() == 2);
    }
  }
}

TEST_CASE("event-stream CRC errors and impossible lengths fail the stream",
          "[adapters][bedrock][event_stream]") {
  auto good = encode_event({{":event-type", "messageStart"}},
                           R"({"role":"assistant"})");
  std::vector<event_message> out;
  SECTION("a payload byte flipped") {
    auto bad = good;
    bad[bad.size() - 6] ^= 0x01;
    event_stream_decoder d;
    CHECK_FALSE(d.feed(bad, out));
    CHECK(d.error() == "an event-stream message failed its CRC check");
  }
  SECTION("a prelude byte flipped") {
    auto bad = good;
    bad[2] ^= 0x01;
    event_stream_decoder d;
    CHECK_FALSE(d.feed(bad, out));
    CHECK(d.error() == "an event-stream prelude failed its CRC check");
  }
  SECTION("a message over 16 MiB") {
    std::string prelude;
    for (uint32_t v : {0x02000000u, 0u}) {
      prelude.push_back(static_cast<char>(v >> 24));
      prelude.push_back(static_cast<char>((v >> 16) & 0xff));
      prelude.push_back(static_cast<char>((v >> 8) & 0xff));
      prelude.push_back(static_cast<char>(v & 0xff));
    }
    auto crc = crc32_of(prelude);
    for (int shift : {24, 16, 8, 0})
      prelude.push_back(static_cast<char>((crc >> shift) & 0xff));
    event_stream_decoder d;
    CHECK_FALSE(d.feed(prelude, out));
    CHECK(d.error() == "an event-stream message exceeds 16 MiB");
  }
  SECTION("headers longer than the message") {
    std::string prelude;
    for (uint32_t v : {16u, 100u}) {
      prelude.push_back(static_cast<char>(v >> 24));
      prelude.push_back(static_cast<char>((v >> 16) & 0xff));
      prelude.push_back(static_cast<char>((v >> 8) & 0xff));
      prelude.push_back(static_cast<char>(v & 0xff));
    }
    auto crc = crc32_of(prelude);
    for (int shift : {24, 16, 8, 0})
      prelude.push_back(static_cast<char>((crc >> shift) & 0xff));
    event_stream_decoder d;
    CHECK_FALSE(d.feed(prelude, out));
    CHECK(d.error() == "an event-stream message has impossible lengths");
  }
  SECTION("a failed decoder stays failed") {
    auto bad = good;
    bad[bad.size() - 1] ^= 0x01;
    event_stream_decoder d;
    CHECK_FALSE(d.feed(bad, out));
    CHECK_FALSE(d.feed(good, out));
    CHECK(out.empty());
  }
  // The known CRC-32 check value.
  CHECK(crc32_of("123456789") == 0xCBF43926u);
}
