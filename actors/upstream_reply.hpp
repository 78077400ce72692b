#pragma once

// An actor that calls a service off the provider path (an `http` plugin's
// decision service, an audit witness, a trace collector) gets the result
// back as a message: `(atom::upstream, id, upstream_result)`.

#include "actors/contracts.hpp"

#include <caf/send.hpp>

#include <cstdint>
#include <utility>

namespace pw::actors {

/// Runs `req` through `call` (on an io thread) and sends its result to
/// `self` as `(atom::upstream, id, upstream_result)`.
template <class Handle>
void call_and_reply(const upstream_fn& call, upstream_request req, Handle self,
                    uint64_t id) {
  call(std::move(req), [self = std::move(self), id](upstream_result r) {
    caf::anon_send(self, atom::upstream_v, id, std::move(r));
  });
}

} // namespace pw::actors
