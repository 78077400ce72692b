#include "core/observe/build_info.hpp"

#include <boost/version.hpp>
#include <caf/config.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <simdjson.h>

#ifndef PW_GIT_REVISION
#define PW_GIT_REVISION "unknown"
#endif
#ifndef PW_YAML_CPP_VERSION
#define PW_YAML_CPP_VERSION "unknown"
#endif
#ifndef PW_RE2_VERSION
#define PW_RE2_VERSION "unknown"
#endif

namespace pw {

std::string_view git_revision() {
  return PW_GIT_REVISION;
}

std::string dependency_versions() {
  auto dotted = [](int major, int minor, int patch) {
    return std::to_string(major) + "." + std::to_string(minor) + "."
           + std::to_string(patch);
  };
  std::string out;
  out
    += "CAF "
       + dotted(CAF_VERSION / 10000, CAF_VERSION / 100 % 100, CAF_VERSION % 100)
       + "\n";
  out += "Boost "
         + dotted(BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                  BOOST_VERSION % 100)
         + "\n";
  // The library loaded at run time, which may be newer than the headers.
  out += std::string{OpenSSL_version(OPENSSL_VERSION)} + "\n";
  out += "yaml-cpp " PW_YAML_CPP_VERSION "\n";
  out += "nlohmann_json "
         + dotted(NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                  NLOHMANN_JSON_VERSION_PATCH)
         + "\n";
  out += "RE2 " PW_RE2_VERSION "\n";
  // The code path simdjson chose for this CPU (haswell, westmere, ...).
  out += "simdjson "
         + dotted(simdjson::SIMDJSON_VERSION_MAJOR,
                  simdjson::SIMDJSON_VERSION_MINOR,
                  simdjson::SIMDJSON_VERSION_REVISION)
         + " (" + simdjson::get_active_implementation()->name() + ")\n";
  return out;
}

} // namespace pw
