// resolve release -> check destination -> fetch manifests -> fan out blobs -> push manifests
//
//   resolve ─▶ plan ─▶ check ─┬─ missing ─▶ fetch ─▶ fan-out ─┬─ blob jobs ─▶ blobs ─▶ blob-done ─┐
//                             │                               └─ nothing missing ──┐             │
//                             └─ present (tag only) ──────────────────────────────▶ gate ◀───────┘
//                                                                                   │
//                                              ledger ◀── push ◀────────────────────┘
//                                                 └── each release image, once its components are in ──▶ push
//
// Failures at any step go straight to the ledger as outcomes. A shard's run
// (--shard K/N) fans out only its share of the blobs; a --blobs-only run's push
// stage pushes nothing and records each image as having its blobs in.
#include "graph/mirror_graph.h"

#include <fmt/format.h>
#include <tbb/flow_graph.h>
#include <tbb/task_arena.h>

#include "graph/async_stage.h"
#include "stages/blob_fanout.h"
#include "stages/check_destination.h"
#include "stages/copy_blob.h"
#include "stages/fetch_manifests.h"
#include "stages/push_manifests.h"
#include "stages/run_ledger.h"

namespace fastsync::graph {

using namespace fastsync::stages;
using tbb::flow::continue_msg;
using tbb::flow::multifunction_node;
using tbb::flow::unlimited;

namespace {

struct LargestBlobFirst {
  bool operator()(const BlobJob& a, const BlobJob& b) const { return a.blob.size < b.blob.size; }
};

// A body that throws is a bug: stop the run, and report the item as failed.
Error crash_error(RunControl& run, std::exception_ptr e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  run.cancel("internal error: " + what);
  return Error::make(ErrorKind::Protocol, "internal error: " + what);
}

}  // namespace

// Stage 1's body: the plan, then the ends' preflight on it.
static Task<ResolveResult> resolve_and_preflight(const ResolveRelease& resolve, const Preflight& preflight) {
  auto resolved = co_await resolve();
  if (resolved.plan && preflight) {
    auto ready = co_await preflight(*resolved.plan);
    if (!ready) co_return ResolveResult{std::nullopt, ready.error()};
  }
  co_return resolved;
}

static void run_mirror_in_arena(Ends ends, RunControl& run, const MirrorSpec& spec, StageLimits limits,
                                const Preflight& preflight, RunMode mode, MirrorRun& result) {
  tbb::flow::graph g;

  ResolveRelease resolve_body(ends, run, spec);
  CheckDestination check_body(ends.source, ends.dest, run, spec.sigstore);
  FetchManifests fetch_body(ends.source, run, spec.sigstore);
  BlobFanout fanout(run.progress);
  CopyBlob copy_body(ends.source, ends.dest, run);
  PushManifests push_body(ends.dest, run, spec.blobs_only);
  std::unique_ptr<RunLedger> ledger;  // sized once the plan is known

  // 1. Resolve the release into a plan; every image enters the graph.
  AsyncStage<continue_msg, ResolveResult> resolve(
      g, 1, [&](continue_msg) { return resolve_and_preflight(resolve_body, preflight); },
      [&](const continue_msg&, std::exception_ptr e) {
        return ResolveResult{std::nullopt, crash_error(run, e)};
      });
  multifunction_node<ResolveResult, std::tuple<ImageJob>> plan(g, 1, [&](const ResolveResult& r, auto& out) {
    if (!r.plan) {
      result.resolve_error = r.error;
      return;
    }
    result.plan = r.plan;
    if (mode == RunMode::Plan) return;
    ledger = std::make_unique<RunLedger>(r.plan->images.size(), r.plan->gates(), run);
    fanout.set_fetched(r.plan->fetched_layers());
    if (r.plan->shard) fanout.set_owned(r.plan->shard->blobs);
    // The image set's other images enter first: the plan lists them after the
    // releases, and their own layers would otherwise start last, as a long tail.
    for (const auto& job : r.plan->images) {
      if (job.is_additional || job.is_graph) std::get<0>(out).try_put(job);
    }
    for (const auto& job : r.plan->images) {
      if (!job.is_additional && !job.is_graph) std::get<0>(out).try_put(job);
    }
  });

  // 2. Check the destination: present images need at most a tag.
  AsyncStage<ImageJob, CheckResult> check(
      g, limits.check, [&](ImageJob job) { return check_body(std::move(job)); },
      [&](const ImageJob& job, std::exception_ptr e) {
        return CheckResult{job, crash_error(run, e)};
      });
  multifunction_node<CheckResult, std::tuple<ImageJob, ImageJob, ImageOutcome>> route(
      g, unlimited, [mode](const CheckResult& r, auto& out) {
        if (r.error) {
          std::get<2>(out).try_put(ImageOutcome::failed(r.job, *r.error));
        } else if (mode == RunMode::Check) {  // a dry run ends here for every image
          std::get<2>(out).try_put(
              ImageOutcome{r.job.id, r.job.present ? ImageStatus::Skipped : ImageStatus::Planned, 0, {}, false, false});
        } else if (r.job.present) {
          std::get<1>(out).try_put(r.job);
        } else {
          std::get<0>(out).try_put(r.job);
        }
      });

  // 3. Fetch manifests (lists with their children) from the source.
  AsyncStage<ImageJob, FetchResult> fetch(
      g, limits.manifest, [&](ImageJob job) { return fetch_body(std::move(job)); },
      [&](const ImageJob& job, std::exception_ptr e) {
        return FetchResult{job, crash_error(run, e)};
      });

  // 4. Fan out: each unique blob once, into one pool shared by all images.
  multifunction_node<FetchResult, std::tuple<BlobJob, ImageJob, ImageOutcome>> fan_out(
      g, unlimited, [&](const FetchResult& r, auto& out) {
        if (r.error) {
          std::get<2>(out).try_put(ImageOutcome::failed(r.job, *r.error));
          return;
        }
        auto added = fanout.add(r.job);
        for (const auto& blob : added.start) std::get<0>(out).try_put(blob);
        if (added.ready) std::get<1>(out).try_put(*added.ready);
        if (added.failed) std::get<2>(out).try_put(*added.failed);
      });
  AsyncStage<BlobJob, BlobOutcome, tbb::flow::priority_queue_node<BlobJob, LargestBlobFirst>> blobs(
      g, limits.blob, [&](BlobJob job) { return copy_body(std::move(job)); },
      [&](const BlobJob& job, std::exception_ptr e) { return BlobOutcome::failed(job, crash_error(run, e)); });
  // A blob in: the images it completes go on; copies into other repositories
  // that waited for it (to mount it) start.
  multifunction_node<BlobOutcome, std::tuple<ImageJob, ImageOutcome, BlobJob>> blob_done(
      g, unlimited, [&](const BlobOutcome& b, auto& out) {
        auto completed = fanout.complete(b);
        for (const auto& blob : completed.start) std::get<2>(out).try_put(blob);
        for (const auto& job : completed.ready) std::get<0>(out).try_put(job);
        for (const auto& failed : completed.failed) std::get<1>(out).try_put(failed);
      });

  // A release image waits at its gate until every component it names is in.
  multifunction_node<ImageJob, std::tuple<ImageJob>> gate(g, unlimited, [&](const ImageJob& job, auto& out) {
    if (!job.is_release) {
      std::get<0>(out).try_put(job);
    } else if (auto due = ledger->release_ready(job)) {
      std::get<0>(out).try_put(*due);
    }
  });

  // 5. Push manifests: children, then the image under its tag.
  AsyncStage<ImageJob, ImageOutcome> push(
      g, limits.push, [&](ImageJob job) { return push_body(std::move(job)); },
      [&](const ImageJob& job, std::exception_ptr e) { return ImageOutcome::failed(job, crash_error(run, e)); });

  multifunction_node<ImageOutcome, std::tuple<ImageJob>> ledger_in(g, unlimited, [&](const ImageOutcome& o, auto& out) {
    for (auto& due : ledger->record(o)) std::get<0>(out).try_put(due);
  });

  using tbb::flow::make_edge;
  using tbb::flow::output_port;
  make_edge(resolve.out(), plan);
  make_edge(output_port<0>(plan), check.in());
  make_edge(check.out(), route);
  make_edge(output_port<0>(route), fetch.in());
  make_edge(output_port<1>(route), gate);
  make_edge(output_port<2>(route), ledger_in);
  make_edge(fetch.out(), fan_out);
  make_edge(output_port<0>(fan_out), blobs.in());
  make_edge(output_port<1>(fan_out), gate);
  make_edge(output_port<2>(fan_out), ledger_in);
  make_edge(blobs.out(), blob_done);
  make_edge(output_port<0>(blob_done), gate);
  make_edge(output_port<1>(blob_done), ledger_in);
  make_edge(output_port<2>(blob_done), blobs.in());
  make_edge(output_port<0>(gate), push.in());
  make_edge(push.out(), ledger_in);
  make_edge(output_port<0>(ledger_in), push.in());

  resolve.in().try_put(continue_msg());
  g.wait_for_all();

  if (ledger) result.outcomes = ledger->outcomes();
}

MirrorRun run_mirror(Ends ends, RunControl& run, const MirrorSpec& spec, StageLimits limits, Preflight preflight,
                     RunMode mode) {
  MirrorRun result;
  // Node bodies only hand work to the HTTP engine and route results: a couple of
  // threads are plenty, and idle TBB workers spin, taking CPU the registries on
  // the same machine need.
  tbb::task_arena arena(static_cast<int>(std::max<std::size_t>(1, limits.graph_threads)));
  arena.execute([&] { run_mirror_in_arena(ends, run, spec, limits, preflight, mode, result); });
  return result;
}

}  // namespace fastsync::graph
