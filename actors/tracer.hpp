#pragma once

// The TRACER: one actor per process while `tracing` is on. SESSIONs hand
// it the spans of each finished request (core/observe/trace.hpp); it
// batches them and exports each batch to the OpenTelemetry collector as
// one OTLP/HTTP JSON request, through the io threads' upstream client.
//
// Bounded and off the request path: a SESSION's send never waits, at most
// `queue_spans` spans wait (a request whose spans do not fit is dropped
// whole and counted), one export runs at a time, and a failed export's
// spans are dropped and counted rather than retried (a collector that is
// down costs no memory). Spans still queued when the process stops are
// not exported. Counters: core/observe/trace.hpp, shown by /metrics.

#include "actors/contracts.hpp"

#include <caf/fwd.hpp>

namespace pw::actors {

/// Spawns the TRACER of `settings` (enabled), exporting through `call`.
tracer_actor spawn_tracer(caf::actor_system& sys, tracing_config settings,
                          upstream_fn call);

} // namespace pw::actors
