#pragma once

// The LEDGER's connection to Redis, driven by one io thread's event loop:
// no thread blocks on Redis. Commands from any thread are posted to that
// io_context, written as they come (pipelined) and answered in order by
// hiredis's reply parser. Each command gets its reply within
// `state.redis.timeout_ms` of being sent, connecting included, or fails:
//
// - no reply in time: the connection is closed and every command on it
//   fails (one that ran late is not sent again: that could charge it
//   twice); for the next second commands fail at once, then a new
//   connection is tried;
// - the connection closed or reset (Redis restarted, an idle connection
//   dropped): each command on it goes once more on a new connection;
// - cannot connect, or AUTH, SELECT or a greeting command refused: every
//   waiting command fails, and for a second the next ones fail at once.
// A reply never grows past 8 MiB or announces an array of more than
// 65,536 elements (the gateway's replies are a few KB): a Redis that
// sends more loses the connection.

#include "actors/redis_store.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace pw::http {

/// A redis_link on `ioc` (whose thread runs every callback) to `cfg`'s
/// Redis; it connects at its first command, and sends `greeting` (e.g.
/// SCRIPT LOAD) on each new connection before any command.
actors::redis_link_ptr
make_redis_link(boost::asio::io_context& ioc, const redis_config& cfg,
                std::vector<std::vector<std::string>> greeting);

} // namespace pw::http
