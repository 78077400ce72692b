#include "plugins/audit_log/audit_chain.hpp"

#include "core/errc.hpp"
#include "core/json/reader.hpp"
#include "core/observe/log.hpp"
#include "core/sha256.hpp"
#include "plugins/audit_log/checkpoint.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace pw::plugins::audit {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view prev_key = "prev";
constexpr std::string_view version_key = "pw_audit";

std::string sys_error(int code) {
  return std::generic_category().message(code);
}

caf::error fail(const std::string& path, const std::string& what) {
  return make_error(errc::internal, "audit log " + path + ": " + what);
}

std::string rfc3339_now() {
  auto now
    = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string{buf.data(), n};
}

caf::expected<std::string> random_genesis(const std::string& path) {
  sha256_digest bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    return fail(path, "RAND_bytes failed to make a genesis");
  return to_hex(bytes);
}

bool is_hex64(const json& x) {
  return is_lower_hex(x, 64);
}

// Returns `record_body` (a compact JSON object) with "prev" spliced in as
// its first field: byte for byte what dump() gives for the object with
// "prev" inserted first. Ends with '\n'.
std::string make_line(const std::string& prev, const std::string& body) {
  std::string line;
  line.reserve(body.size() + prev.size() + 12);
  line += R"({"prev":")";
  line += prev;
  line += '"';
  if (body.size() > 2) {
    line += ',';
    line.append(body, 1);
  } else {
    line += '}';
  }
  line += '\n';
  return line;
}

// Reads exactly `n` bytes at `offset`.
bool pread_full(int fd, char* buf, size_t n, off_t offset) {
  while (n > 0) {
    auto got = ::pread(fd, buf, n, offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    buf += got;
    n -= static_cast<size_t>(got);
    offset += got;
  }
  return true;
}

// Returns the last line (without '\n') of the non-empty file `fd` of `size`
// bytes; an error when the file does not end with '\n'.
caf::expected<std::string> read_last_line(int fd, uint64_t size,
                                          const std::string& path) {
  char last = 0;
  if (!pread_full(fd, &last, 1, static_cast<off_t>(size - 1)))
    return fail(path, "cannot read: " + sys_error(errno));
  if (last != '\n')
    return fail(path, "last line is incomplete (no trailing newline); not "
                      "appending, check the file");
  // Walk back in chunks to the '\n' before the last line.
  auto end = size - 1;
  auto begin = end;
  std::array<char, 4096> buf{};
  bool found = false;
  while (begin > 0 && !found) {
    auto chunk = std::min<uint64_t>(buf.size(), begin);
    auto from = begin - chunk;
    if (!pread_full(fd, buf.data(), chunk, static_cast<off_t>(from)))
      return fail(path, "cannot read: " + sys_error(errno));
    for (auto i = chunk; i > 0; --i) {
      if (buf[i - 1] == '\n') {
        begin = from + i;
        found = true;
        break;
      }
    }
    if (!found)
      begin = from;
  }
  std::string line(end - begin, '\0');
  if (!line.empty()
      && !pread_full(fd, line.data(), line.size(), static_cast<off_t>(begin)))
    return fail(path, "cannot read: " + sys_error(errno));
  return line;
}

// A rotated sibling of the log: `path.NNNNNN`.
struct rotated_file {
  uint64_t seq = 0;
  std::string path;
};

// Returns the highest numbered rotated file next to `path`, if any.
std::optional<rotated_file> highest_rotated(const std::string& path) {
  namespace fs = std::filesystem;
  auto fs_path = fs::path{path};
  auto dir = fs_path.parent_path();
  if (dir.empty())
    dir = ".";
  auto prefix = fs_path.filename().string() + ".";
  std::optional<rotated_file> best;
  std::error_code ec;
  for (fs::directory_iterator it{dir, ec}, last; !ec && it != last;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.size() < prefix.size() + 6
        || name.compare(0, prefix.size(), prefix) != 0)
      continue;
    auto digits = std::string_view{name}.substr(prefix.size());
    if (digits.size() > 18)
      continue;
    uint64_t seq = 0;
    bool numeric = true;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        numeric = false;
        break;
      }
      seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    if (numeric && (!best || seq > best->seq))
      best = rotated_file{seq, (dir / name).string()};
  }
  return best;
}

// Syncs the directory holding `path`, so a create or rename survives a
// crash. Best effort: some file systems refuse fsync on directories.
void sync_parent_dir(const std::string& path) {
  auto dir = std::filesystem::path{path}.parent_path();
  auto fd = ::open(dir.empty() ? "." : dir.c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  ::fsync(fd);
  ::close(fd);
}

// Opens (creating with mode 0600) the log file for appending.
caf::expected<int> open_log_file(const std::string& path, uint64_t& size) {
  auto fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(path, "cannot open: " + sys_error(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto err = errno;
    ::close(fd);
    return fail(path, "cannot stat: " + sys_error(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(path, "not a regular file");
  }
  size = static_cast<uint64_t>(st.st_size);
  return fd;
}

} // namespace

std::string line_hash(std::string_view line) {
  return to_hex(sha256(line));
}

json parse_line(std::string_view line) {
  auto doc = pw::json::parse(line, pw::json::upstream_limits);
  return doc ? std::move(*doc) : json(json::value_t::discarded);
}

bool is_record(const json& x) {
  return x.is_object() && !x.empty() && x.begin().key() == prev_key;
}

// -- audit_writer -------------------------------------------------------------

audit_writer::audit_writer(writer_options options)
    : options_(std::move(options)) {
  // nop
}

audit_writer::audit_writer(audit_writer&& other) noexcept
    : options_(std::move(other.options_)), fd_(std::exchange(other.fd_, -1)),
      last_hash_(std::move(other.last_hash_)),
      previous_file_(std::move(other.previous_file_)), size_(other.size_),
      synced_size_(other.synced_size_),
      synced_hash_(std::move(other.synced_hash_)),
      synced_has_records_(other.synced_has_records_),
      recovery_(std::move(other.recovery_)), has_records_(other.has_records_),
      unsynced_(other.unsynced_), dirty_(other.dirty_),
      genesis_(std::move(other.genesis_)), lines_(other.lines_),
      uncovered_(other.uncovered_), checkpoint_due_(other.checkpoint_due_),
      synced_lines_(other.synced_lines_),
      synced_uncovered_(other.synced_uncovered_),
      config_sha256_(std::move(other.config_sha256_)),
      unsynced_checkpoints_(std::move(other.unsynced_checkpoints_)),
      ready_checkpoints_(std::move(other.ready_checkpoints_)) {
  // nop
}

audit_writer& audit_writer::operator=(audit_writer&& other) noexcept {
  if (this != &other) {
    close_file();
    options_ = std::move(other.options_);
    fd_ = std::exchange(other.fd_, -1);
    last_hash_ = std::move(other.last_hash_);
    previous_file_ = std::move(other.previous_file_);
    size_ = other.size_;
    synced_size_ = other.synced_size_;
    synced_hash_ = std::move(other.synced_hash_);
    synced_has_records_ = other.synced_has_records_;
    recovery_ = std::move(other.recovery_);
    has_records_ = other.has_records_;
    unsynced_ = other.unsynced_;
    dirty_ = other.dirty_;
    genesis_ = std::move(other.genesis_);
    lines_ = other.lines_;
    uncovered_ = other.uncovered_;
    checkpoint_due_ = other.checkpoint_due_;
    synced_lines_ = other.synced_lines_;
    synced_uncovered_ = other.synced_uncovered_;
    config_sha256_ = std::move(other.config_sha256_);
    unsynced_checkpoints_ = std::move(other.unsynced_checkpoints_);
    ready_checkpoints_ = std::move(other.ready_checkpoints_);
  }
  return *this;
}

audit_writer::~audit_writer() {
  close_file();
}

int audit_writer::do_fsync() {
  return options_.fsync_file != nullptr ? options_.fsync_file(fd_)
                                        : ::fsync(fd_);
}

void audit_writer::mark_synced() {
  synced_size_ = size_;
  synced_hash_ = last_hash_;
  synced_has_records_ = has_records_;
  synced_lines_ = lines_;
  synced_uncovered_ = uncovered_;
  unsynced_ = false;
  for (auto& line : unsynced_checkpoints_)
    ready_checkpoints_.push_back(std::move(line));
  unsynced_checkpoints_.clear();
}

void audit_writer::close_file() noexcept {
  if (fd_ < 0)
    return;
  if (unsynced_)
    do_fsync();
  ::close(fd_);
  fd_ = -1;
  unsynced_ = false;
}

caf::expected<audit_writer> audit_writer::open(writer_options options) {
  audit_writer result{std::move(options)};
  const auto& path = result.options_.path;
  uint64_t size = 0;
  auto fd = open_log_file(path, size);
  if (!fd)
    return std::move(fd.error());
  result.fd_ = *fd;
  if (auto recovered = result.recover_torn_tail(size); !recovered)
    return recovered.error();
  if (size > 0) {
    // Continue the chain of the existing file.
    auto last = read_last_line(result.fd_, size, path);
    if (!last)
      return std::move(last.error());
    auto doc = parse_line(*last);
    if (!doc.is_object())
      return fail(path, "last line is not a JSON object; not appending, check "
                        "the file");
    if (!is_record(doc) && !doc.contains(version_key))
      return fail(path, "last line is neither a header nor a record; not "
                        "appending, check the file");
    result.last_hash_ = line_hash(*last);
    result.size_ = size;
    result.has_records_ = is_record(doc);
    if (result.checkpointing()) {
      if (auto scanned = result.scan(size); !scanned)
        return scanned.error();
      // A shutdown's checkpoint may not have reached the witness.
      if (is_checkpoint(doc)) {
        result.unsynced_checkpoints_.push_back(*last);
        // The interval it states holds the records after it: a new one
        // must state the interval now in force before they come.
        const auto& cp = result.options_.checkpoints;
        if (doc.value("every_lines", json()) != cp.every_lines
            || doc.value("every_seconds", json()) != cp.every_seconds)
          result.checkpoint_due_ = true;
      }
    }
    result.mark_synced();
    if (auto noted = result.note_recovery(); !noted)
      return noted.error();
    return result;
  }
  // A new (or empty) file: chain to the newest rotated file, if any, in case
  // a rotation stopped between its rename and the new file.
  if (auto rotated = highest_rotated(path)) {
    auto rfd = ::open(rotated->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
      return fail(rotated->path, "cannot open: " + sys_error(errno));
    struct stat st {};
    caf::expected<std::string> last = fail(rotated->path, "empty file");
    if (::fstat(rfd, &st) == 0 && st.st_size > 0)
      last
        = read_last_line(rfd, static_cast<uint64_t>(st.st_size), rotated->path);
    ::close(rfd);
    if (!last)
      return std::move(last.error());
    result.last_hash_ = line_hash(*last);
    result.previous_file_ = base_name(rotated->path);
  }
  if (auto started = result.start_file(); !started)
    return started.error();
  if (auto noted = result.note_recovery(); !noted)
    return noted.error();
  return result;
}

caf::expected<void> audit_writer::recover_torn_tail(uint64_t& size) {
  const auto& path = options_.path;
  if (size == 0)
    return {};
  char last = 0;
  if (!pread_full(fd_, &last, 1, static_cast<off_t>(size - 1)))
    return fail(path, "cannot read: " + sys_error(errno));
  if (last == '\n')
    return {};
  // The torn part starts after the last '\n' (or at 0: a torn header).
  uint64_t keep = 0;
  std::array<char, 4096> buf{};
  for (auto end = size; end > 0 && keep == 0;) {
    auto chunk = std::min<uint64_t>(buf.size(), end);
    auto from = end - chunk;
    if (!pread_full(fd_, buf.data(), chunk, static_cast<off_t>(from)))
      return fail(path, "cannot read: " + sys_error(errno));
    for (auto i = chunk; i > 0; --i)
      if (buf[i - 1] == '\n') {
        keep = from + i;
        break;
      }
    end = from;
  }
  std::string torn(size - keep, '\0');
  if (!pread_full(fd_, torn.data(), torn.size(), static_cast<off_t>(keep)))
    return fail(path, "cannot read: " + sys_error(errno));
  // The torn bytes are kept, next to the log, for whoever looks into it.
  auto stamp = rfc3339_now();
  stamp.erase(std::remove(stamp.begin(), stamp.end(), ':'), stamp.end());
  auto aside = path + ".torn-" + stamp;
  int afd = -1;
  for (int n = 2; afd < 0; ++n) {
    afd = ::open(aside.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (afd < 0 && (errno != EEXIST || n > 100))
      return fail(aside, "cannot create: " + sys_error(errno));
    if (afd < 0)
      aside = path + ".torn-" + stamp + "-" + std::to_string(n);
  }
  bool saved = ::write(afd, torn.data(), torn.size())
                 == static_cast<ssize_t>(torn.size())
               && ::fsync(afd) == 0;
  ::close(afd);
  if (!saved)
    return fail(aside, "cannot save the torn last line: " + sys_error(errno));
  sync_parent_dir(aside);
  if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || do_fsync() != 0)
    return fail(path, "cannot cut off the torn last line: " + sys_error(errno));
  size = keep;
  recovery_ = json{{"event", "audit_recovered"},
                   {"time", rfc3339_now()},
                   {"torn_bytes", torn.size()},
                   {"torn_sha256", to_hex(sha256(torn))},
                   {"torn_file", base_name(aside)}};
  return {};
}

caf::expected<void> audit_writer::note_recovery() {
  if (!recovery_)
    return {};
  // Its own durable line: the chain itself says a crash cut a line short.
  auto record = *recovery_;
  if (auto appended = append(std::move(record)); !appended)
    return appended.error();
  return sync();
}

caf::expected<void> audit_writer::start_file() {
  const auto& path = options_.path;
  if (fd_ < 0) {
    uint64_t size = 0;
    auto fd = open_log_file(path, size);
    if (!fd)
      return std::move(fd.error());
    if (size > 0) {
      ::close(*fd);
      return fail(path, "appeared while rotating; not appending, check the "
                        "file");
    }
    fd_ = *fd;
    size_ = 0;
    dirty_ = false;
  }
  json header = json::object();
  header[version_key] = 1;
  if (previous_file_) {
    header["genesis"] = last_hash_;
  } else {
    auto genesis = random_genesis(path);
    if (!genesis)
      return std::move(genesis.error());
    header["genesis"] = std::move(*genesis);
  }
  header["created"] = rfc3339_now();
  if (previous_file_)
    header["previous_file"] = *previous_file_;
  else
    header["previous_file"] = nullptr;
  genesis_ = header["genesis"].get<std::string>();
  auto line = pw::json::dump(header);
  line += '\n';
  if (auto written = write_line(line, true); !written)
    return written;
  sync_parent_dir(path);
  last_hash_ = line_hash(std::string_view{line}.substr(0, line.size() - 1));
  has_records_ = false;
  lines_ = 1;
  mark_synced();
  return {};
}

caf::expected<void> audit_writer::rotate() {
  const auto& path = options_.path;
  // The file's last line is a checkpoint: a witness then holds the end of
  // every rotated file.
  if (checkpointing() && uncovered_ > 0) {
    if (auto written = write_checkpoint(); !written)
      return written;
  }
  if (unsynced_) {
    if (auto synced = sync(); !synced)
      return synced;
  }
  auto next = highest_rotated(path);
  auto seq = next ? next->seq + 1 : 1;
  std::array<char, 32> suffix{};
  std::snprintf(suffix.data(), suffix.size(), ".%06llu",
                static_cast<unsigned long long>(seq));
  auto rotated = path + suffix.data();
  if (::rename(path.c_str(), rotated.c_str()) != 0)
    return fail(path, "cannot rename to " + rotated + ": " + sys_error(errno));
  // From here on the old file is complete and closed; last_hash_ is its last
  // line. If starting the new file fails, the next append tries again.
  close_file();
  previous_file_ = base_name(rotated);
  size_ = 0;
  has_records_ = false;
  return start_file();
}

caf::expected<void> audit_writer::truncate_back() {
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
    return fail(options_.path,
                "cannot cut back a partial write: " + sys_error(errno));
  dirty_ = false;
  return {};
}

caf::expected<void> audit_writer::write_line(const std::string& line,
                                             bool do_sync) {
  const auto& path = options_.path;
  ssize_t n = 0;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<size_t>(n) != line.size()) {
    auto what = n < 0 ? "write failed: " + sys_error(errno)
                      : "short write (" + std::to_string(n) + " of "
                          + std::to_string(line.size()) + " bytes)";
    dirty_ = true;
    if (auto cut = truncate_back(); !cut)
      what += "; " + message_of(cut.error());
    return fail(path, what);
  }
  if (do_sync) {
    if (do_fsync() != 0) {
      auto what = "fsync failed: " + sys_error(errno);
      dirty_ = true;
      if (auto cut = truncate_back(); !cut)
        what += "; " + message_of(cut.error());
      return fail(path, what);
    }
    unsynced_ = false;
  } else {
    unsynced_ = true;
  }
  size_ += line.size();
  return {};
}

caf::expected<std::string> audit_writer::append(nlohmann::ordered_json record) {
  const auto& path = options_.path;
  if (!record.is_object())
    return fail(path, "a record must be a JSON object");
  if (record.contains(prev_key))
    return fail(path, "a record must not set \"prev\"; the writer does");
  return append_text(pw::json::dump(record));
}

caf::expected<std::string> audit_writer::append_text(std::string body) {
  if (auto ready = prepare(); !ready)
    return ready.error();
  // No record is written while a checkpoint is due and cannot be.
  if (checkpoint_due_) {
    if (auto written = write_checkpoint(); !written)
      return written.error();
  }
  auto line = make_line(last_hash_, body);
  if (options_.max_bytes > 0 && has_records_
      && size_ + line.size() > options_.max_bytes) {
    if (auto rotated = rotate(); !rotated)
      return rotated.error();
    line = make_line(last_hash_, body);
  }
  if (auto written = write_line(line, options_.sync == fsync_policy::every);
      !written)
    return written.error();
  last_hash_ = line_hash(std::string_view{line}.substr(0, line.size() - 1));
  has_records_ = true;
  ++lines_;
  if (checkpointing() && ++uncovered_ >= options_.checkpoints.every_lines)
    checkpoint_due_ = true;
  if (options_.sync == fsync_policy::every)
    mark_synced();
  return last_hash_;
}

caf::expected<void> audit_writer::prepare() {
  if (dirty_) {
    if (auto cut = truncate_back(); !cut)
      return cut;
  }
  if (fd_ < 0 || size_ == 0) {
    // A rotation or the first header did not finish: start the file again.
    if (auto started = start_file(); !started)
      return started;
  }
  return {};
}

bool audit_writer::checkpointing() const {
  return options_.checkpoints.key != nullptr;
}

caf::expected<void> audit_writer::scan(uint64_t size) {
  const auto& path = options_.path;
  // Only the start of each line matters: enough for a header or for the
  // checkpoint marker.
  constexpr size_t keep = 512;
  std::string head;
  uint64_t lines = 0;
  uint64_t uncovered = 0;
  std::array<char, 65536> buf{};
  for (uint64_t offset = 0; offset < size;) {
    auto chunk = std::min<uint64_t>(buf.size(), size - offset);
    if (!pread_full(fd_, buf.data(), chunk, static_cast<off_t>(offset)))
      return fail(path, "cannot read: " + sys_error(errno));
    offset += chunk;
    for (size_t i = 0; i < chunk; ++i) {
      char c = buf[i];
      if (c != '\n') {
        if (head.size() < keep)
          head += c;
        continue;
      }
      ++lines;
      if (lines == 1) {
        auto doc = parse_line(head);
        if (!doc.is_object() || !is_hex64(doc.value("genesis", json())))
          return fail(path, "line 1 is not a header; not appending, check the "
                            "file");
        genesis_ = doc["genesis"].get<std::string>();
      } else if (looks_like_checkpoint(head)) {
        uncovered = 0;
      } else {
        ++uncovered;
      }
      head.clear();
    }
  }
  lines_ = lines;
  uncovered_ = uncovered;
  // Records no checkpoint covers (a crash, or checkpoints newly turned on):
  // the first append covers them first.
  checkpoint_due_ = uncovered > 0;
  return {};
}

caf::expected<void> audit_writer::write_checkpoint() {
  const auto& cp = options_.checkpoints;
  checkpoint_fields f;
  f.file_genesis = genesis_;
  f.line = lines_ + 1;
  f.head = last_hash_;
  f.time = log::timestamp();
  f.config_sha256 = config_sha256_;
  f.every_lines = cp.every_lines;
  f.every_seconds = cp.every_seconds;
  auto record = make_checkpoint(f, *cp.key);
  if (record["sig"].get_ref<const std::string&>().empty())
    return fail(options_.path, "cannot sign a checkpoint (OpenSSL failed)");
  auto line = make_line(last_hash_, pw::json::dump(record));
  if (auto written = write_line(line, options_.sync == fsync_policy::every);
      !written)
    return written;
  line.pop_back();
  last_hash_ = line_hash(line);
  has_records_ = true;
  ++lines_;
  uncovered_ = 0;
  checkpoint_due_ = false;
  unsynced_checkpoints_.push_back(std::move(line));
  if (options_.sync == fsync_policy::every)
    mark_synced();
  return {};
}

caf::expected<bool> audit_writer::checkpoint() {
  if (!checkpointing() || uncovered_ == 0)
    return false;
  if (auto ready = prepare(); !ready)
    return ready.error();
  if (auto written = write_checkpoint(); !written)
    return written.error();
  return true;
}

std::vector<std::string> audit_writer::take_checkpoints() {
  return std::exchange(ready_checkpoints_, {});
}

uint64_t audit_writer::uncovered() const {
  return uncovered_;
}

void audit_writer::set_config_sha256(std::string sha256) {
  config_sha256_ = std::move(sha256);
}

caf::expected<void> audit_writer::sync(bool roll_back) {
  if (fd_ < 0)
    return {};
  if (do_fsync() == 0) {
    mark_synced();
    return {};
  }
  auto what = "fsync failed: " + sys_error(errno);
  if (roll_back && size_ > synced_size_) {
    if (::ftruncate(fd_, static_cast<off_t>(synced_size_)) != 0) {
      what += "; cannot cut back the unsynced lines: " + sys_error(errno);
    } else {
      what += "; the " + std::to_string(size_ - synced_size_)
              + " bytes written since the last sync were cut back";
      size_ = synced_size_;
      last_hash_ = synced_hash_;
      has_records_ = synced_has_records_;
      lines_ = synced_lines_;
      uncovered_ = synced_uncovered_;
      checkpoint_due_
        = checkpointing() && uncovered_ >= options_.checkpoints.every_lines;
      unsynced_checkpoints_.clear();
    }
  }
  return fail(options_.path, what);
}

const std::optional<nlohmann::ordered_json>& audit_writer::recovery() const {
  return recovery_;
}

const std::string& audit_writer::last_hash() const {
  return last_hash_;
}

uint64_t audit_writer::size() const {
  return size_;
}

std::string base_name(const std::string& path) {
  return std::filesystem::path{path}.filename().string();
}

} // namespace pw::plugins::audit
