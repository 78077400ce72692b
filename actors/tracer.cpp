#include "actors/tracer.hpp"

#include "actors/upstream_reply.hpp"
#include "core/observe/build_info.hpp"
#include "core/observe/log.hpp"
#include "core/request/service_post.hpp"

#include <caf/all.hpp>

#include <deque>

namespace pw::actors {

namespace {

struct tracer_state {
  static inline const char* name = "tracer";
  tracing_config settings;
  /// The collector's export POST.
  service_target to;
  upstream_fn call;
  trace::exporter_identity who;
  /// Requests whose spans wait for an export, oldest first.
  std::deque<trace::encoded_spans> queue;
  size_t queued_spans = 0;
  /// The export in flight: its id and how many spans it carries.
  bool in_flight = false;
  uint64_t export_id = 0;
  size_t exporting = 0;
  bool flush_armed = false;
};

using tracer_ptr = tracer_actor::stateful_pointer<tracer_state>;

/// Sends the oldest requests' spans, at least one request and up to
/// batch_spans spans (a request's spans are never split).
void export_batch(tracer_ptr self) {
  auto& st = self->state;
  if (st.in_flight || st.queue.empty())
    return;
  std::vector<trace::encoded_spans> batch;
  size_t spans = 0;
  while (!st.queue.empty()
         && (batch.empty()
             || spans + st.queue.front().count <= st.settings.batch_spans)) {
    spans += st.queue.front().count;
    batch.push_back(std::move(st.queue.front()));
    st.queue.pop_front();
  }
  st.queued_spans -= spans;
  auto req = service_post(st.to, trace::encode_otlp_json(st.who, batch));
  st.in_flight = true;
  st.exporting = spans;
  auto id = ++st.export_id;
  call_and_reply(st.call, std::move(req), caf::actor_cast<tracer_actor>(self),
                 id);
}

void arm_flush(tracer_ptr self) {
  auto& st = self->state;
  if (st.flush_armed || st.queue.empty())
    return;
  st.flush_armed = true;
  self->delayed_send(self, st.settings.flush_interval, atom::flush_v);
}

void exported(tracer_ptr self, uint64_t id, const upstream_result& r) {
  auto& st = self->state;
  if (!st.in_flight || id != st.export_id)
    return;
  st.in_flight = false;
  if (r.failure == upstream_failure::none && r.status >= 200
      && r.status < 300) {
    trace::count_exported(st.exporting);
  } else {
    trace::count_failure();
    trace::count_dropped(st.exporting);
    log::write(log_level::warning, "trace_export_failed",
               {{"collector", st.settings.collector->origin()},
                {"error", r.failure != upstream_failure::none
                            ? std::string{to_string(r.failure)}
                            : "HTTP " + std::to_string(r.status)},
                {"spans_dropped", st.exporting}});
  }
  st.exporting = 0;
  if (st.queued_spans >= st.settings.batch_spans)
    export_batch(self);
  arm_flush(self);
}

tracer_actor::behavior_type tracer(tracer_ptr self, tracing_config settings,
                                   upstream_fn call) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.call = std::move(call);
  st.to.target = *st.settings.collector;
  st.to.path = st.settings.path;
  for (const auto& [name, value] : st.settings.headers)
    st.to.headers.push_back({name, value});
  st.to.ca_file = st.settings.ca_file;
  st.to.timeout = st.settings.timeout;
  st.who.service_name = st.settings.service_name;
  st.who.version = PW_VERSION;
  return {
    [self](atom::spans, trace::encoded_spans& t) {
      auto& st = self->state;
      auto n = t.count;
      if (st.queued_spans + n > st.settings.queue_spans) {
        trace::count_dropped(n);
        return;
      }
      st.queue.push_back(std::move(t));
      st.queued_spans += n;
      if (st.queued_spans >= st.settings.batch_spans)
        export_batch(self);
      arm_flush(self);
    },
    [self](atom::flush) {
      self->state.flush_armed = false;
      export_batch(self);
      arm_flush(self);
    },
    [self](atom::upstream, uint64_t id, upstream_result& r) {
      exported(self, id, r);
    },
  };
}

} // namespace

tracer_actor spawn_tracer(caf::actor_system& sys, tracing_config settings,
                          upstream_fn call) {
  return sys.spawn(tracer, std::move(settings), std::move(call));
}

} // namespace pw::actors
