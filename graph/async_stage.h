// The shape every I/O stage of the mirror shares:
//
//   buffer -> limiter(N) -> async_node --(result)--> successors
//                 ^                         |
//                 +------- decrement -------+
//
// The async_node's body only starts a coroutine and returns, so no TBB thread
// waits on the network; the stage's concurrency is counted in limiter tokens,
// returned when the coroutine's result comes back through the gateway.
#pragma once

#include <tbb/flow_graph.h>

#include <exception>
#include <functional>

#include "registry/core/task.h"

namespace fastsync::graph {

template <typename In, typename Out, typename Buffer = tbb::flow::queue_node<In>>
class AsyncStage {
 public:
  using Body = std::function<Task<Out>(In)>;
  // Turns a body that threw (a bug) into a failed result, so the run ends cleanly.
  using OnCrash = std::function<Out(const In&, std::exception_ptr)>;

  template <typename... BufferArgs>
  AsyncStage(tbb::flow::graph& g, std::size_t limit, Body body, OnCrash on_crash, BufferArgs&&... buffer_args)
      : body_(std::move(body)),
        on_crash_(std::move(on_crash)),
        buffer_(g, std::forward<BufferArgs>(buffer_args)...),
        limiter_(g, limit),
        worker_(g, tbb::flow::unlimited, [this](const In& in, Gateway& gateway) { start(in, gateway); }),
        token_back_(g, tbb::flow::unlimited, [](const Out&) { return tbb::flow::continue_msg(); }) {
    tbb::flow::make_edge(buffer_, limiter_);
    tbb::flow::make_edge(limiter_, worker_);
    tbb::flow::make_edge(tbb::flow::output_port<0>(worker_), token_back_);
    tbb::flow::make_edge(token_back_, limiter_.decrementer());
  }

  tbb::flow::receiver<In>& in() { return buffer_; }
  // Through the port: an async_node ignores successors registered on its sender<> base.
  tbb::flow::sender<Out>& out() { return tbb::flow::output_port<0>(worker_); }

 private:
  using Worker = tbb::flow::async_node<In, Out>;
  using Gateway = typename Worker::gateway_type;

  void start(const In& in, Gateway& gateway) {
    gateway.reserve_wait();  // the graph is not done while this result is out
    spawn(
        body_(in),
        [&gateway](Out out) {
          gateway.try_put(out);
          gateway.release_wait();
        },
        [this, &gateway, in](std::exception_ptr e) {
          gateway.try_put(on_crash_(in, e));
          gateway.release_wait();
        });
  }

  Body body_;
  OnCrash on_crash_;
  Buffer buffer_;
  tbb::flow::limiter_node<In> limiter_;
  Worker worker_;
  tbb::flow::function_node<Out, tbb::flow::continue_msg> token_back_;
};

}  // namespace fastsync::graph
