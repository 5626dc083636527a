// Each stage body on its own, against the in-memory fake registry.
#include <gtest/gtest.h>

#include "stages/blob_fanout.h"
#include "stages/check_destination.h"
#include "stages/copy_blob.h"
#include "stages/fetch_manifests.h"
#include "stages/push_manifests.h"
#include "stages/run_ledger.h"
#include "tests/unit/fake_registry.h"

namespace fastsync::stages {
namespace {

using testing::FakeRegistry;

const Repository kSrc{"quay.example", "ocp/art-dev"};
const Repository kDst{"mirror.example", "openshift/release"};

ImageJob job_for(std::size_t id, const std::string& name, const std::string& digest) {
  ImageJob job;
  job.id = id;
  job.name = name;
  job.source = kSrc;
  job.digest = digest;
  job.dest = kDst;
  job.tag = "4.20.8-x86_64-" + name;
  return job;
}

TEST(CheckDestination, PresentAbsentAndFailingHeads) {
  FakeRegistry fake;
  RunControl run;
  std::string present = fake.add_image(kDst, {"layer-a"});
  std::string absent = fake.add_image(kSrc, {"layer-b"});
  CheckDestination check(fake, fake, run);

  auto r1 = sync_wait(check(job_for(0, "a", present)));
  EXPECT_FALSE(r1.error);
  EXPECT_TRUE(r1.job.present);

  auto r2 = sync_wait(check(job_for(1, "b", absent)));
  EXPECT_FALSE(r2.error);
  EXPECT_FALSE(r2.job.present);

  // A 5xx on HEAD never stops a copy: the image is copied instead.
  fake.fail_manifest_reads[kDst.str()] = Error::make(ErrorKind::Server, "HTTP 500", 500);
  auto r3 = sync_wait(check(job_for(2, "c", present)));
  EXPECT_FALSE(r3.error);
  EXPECT_FALSE(r3.job.present);

  // Refused credentials are an error (and fatal for the run).
  fake.fail_manifest_reads[kDst.str()] = Error::make(ErrorKind::AuthDenied, "denied", 401);
  auto r4 = sync_wait(check(job_for(3, "d", present)));
  ASSERT_TRUE(r4.error);
  EXPECT_TRUE(is_run_fatal(*r4.error));
}

TEST(FetchManifests, ListsBringTheirChildrenFirstAndBlobsOnce) {
  FakeRegistry fake;
  RunControl run;
  std::string amd = fake.add_image(kSrc, {"base", "amd-only"});
  std::string arm = fake.add_image(kSrc, {"base", "arm-only"}, /*oci=*/true);
  std::string list = fake.add_list(kSrc, {amd, arm});
  FetchManifests fetch(fake, run);
  auto r = sync_wait(fetch(job_for(0, "multi", list)));
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_EQ(r.job.manifests.size(), 3u);
  EXPECT_EQ(r.job.manifests[0].digest, amd);
  EXPECT_EQ(r.job.manifests[1].digest, arm);
  EXPECT_EQ(r.job.manifests[2].digest, list);
  // 2 configs + base + amd-only + arm-only; "base" only once.
  EXPECT_EQ(r.job.blobs.size(), 5u);
  std::set<std::string> digests;
  std::uint64_t stored_bytes = 0;
  auto stored = fake.snapshot(kSrc);
  for (const auto& b : r.job.blobs) {
    digests.insert(b.digest);
    stored_bytes += stored.blobs.at(b.digest).size();
  }
  EXPECT_EQ(r.job.size(), stored_bytes);
  EXPECT_EQ(digests.size(), 5u);
  EXPECT_TRUE(digests.count(sha256_digest("base")));

  auto missing = sync_wait(fetch(job_for(1, "gone", sha256_digest("nothing"))));
  ASSERT_TRUE(missing.error);
  EXPECT_EQ(missing.error->kind, ErrorKind::NotFound);
}

TEST(BlobFanout, StartsEachBlobOnceAndReleasesImagesWhenTheirBlobsAreIn) {
  Progress progress;
  BlobFanout fanout(progress);
  auto blob = [](const std::string& s) { return Descriptor{"", sha256_digest(s), s.size(), {}}; };
  ImageJob a = job_for(0, "a", "da");
  a.blobs = {blob("shared"), blob("only-a")};
  ImageJob b = job_for(1, "b", "db");
  b.blobs = {blob("shared"), blob("only-b")};

  auto added_a = fanout.add(a);
  EXPECT_EQ(added_a.start.size(), 2u);
  EXPECT_FALSE(added_a.ready);
  auto added_b = fanout.add(b);
  ASSERT_EQ(added_b.start.size(), 1u);  // "shared" is already under way
  EXPECT_EQ(added_b.start[0].blob.digest, sha256_digest("only-b"));
  EXPECT_EQ(progress.blobs_total.load(), 3u);

  auto done = [&](const std::string& s) {
    BlobOutcome o;
    o.digest = sha256_digest(s);
    o.dest = kDst;
    o.size = s.size();
    return fanout.complete(o);
  };
  EXPECT_TRUE(done("only-a").ready.empty());
  auto after_shared = done("shared");
  ASSERT_EQ(after_shared.ready.size(), 1u);
  EXPECT_EQ(after_shared.ready[0].id, 0u);
  auto after_b = done("only-b");
  ASSERT_EQ(after_b.ready.size(), 1u);
  EXPECT_EQ(after_b.ready[0].id, 1u);

  // An image whose blobs are all done already is ready at once.
  ImageJob c = job_for(2, "c", "dc");
  c.blobs = {blob("shared")};
  auto added_c = fanout.add(c);
  EXPECT_TRUE(added_c.start.empty());
  ASSERT_TRUE(added_c.ready);
}

// An additional image sharing a layer with a release component lands in
// another repository of the same registry: that copy waits for the first and
// mounts it (or copies from the source, if the first failed).
TEST(BlobFanout, ASecondRepositoryOfTheRegistryMountsTheFirstCopyOnceItIsIn) {
  Progress progress;
  BlobFanout fanout(progress);
  auto blob = [](const std::string& s) { return Descriptor{"", sha256_digest(s), s.size(), {}}; };
  const Repository other{kDst.registry, "example/tool"};
  ImageJob a = job_for(0, "a", "da");
  a.blobs = {blob("base"), blob("base-2")};
  ImageJob b = job_for(1, "b", "db");
  b.dest = other;
  b.blobs = {blob("base"), blob("base-2")};
  EXPECT_EQ(fanout.add(a).start.size(), 2u);
  auto added_b = fanout.add(b);
  EXPECT_TRUE(added_b.start.empty()) << "b waits for a's copies, it does not fetch them again";
  EXPECT_FALSE(added_b.ready);

  BlobOutcome base;
  base.digest = sha256_digest("base");
  base.dest = kDst;
  auto after_base = fanout.complete(base);
  ASSERT_EQ(after_base.start.size(), 1u);
  EXPECT_EQ(after_base.start[0].dest, other);
  ASSERT_TRUE(after_base.start[0].mount_from);
  EXPECT_EQ(*after_base.start[0].mount_from, kDst);

  BlobOutcome failed;
  failed.digest = sha256_digest("base-2");
  failed.dest = kDst;
  failed.error = Error::make(ErrorKind::DigestMismatch, "bad bytes");
  auto after_failed = fanout.complete(failed);
  ASSERT_EQ(after_failed.start.size(), 1u);
  EXPECT_FALSE(after_failed.start[0].mount_from) << "nothing to mount: b copies from the source";
  EXPECT_EQ(progress.blobs_total.load(), 4u);
}

TEST(BlobFanout, AFailedBlobFailsEveryImageWaitingForIt) {
  Progress progress;
  BlobFanout fanout(progress);
  auto blob = [](const std::string& s) { return Descriptor{"", sha256_digest(s), s.size(), {}}; };
  ImageJob a = job_for(0, "a", "da");
  a.blobs = {blob("bad"), blob("fine")};
  ImageJob b = job_for(1, "b", "db");
  b.blobs = {blob("bad")};
  (void)fanout.add(a);
  (void)fanout.add(b);
  BlobOutcome failed;
  failed.digest = sha256_digest("bad");
  failed.dest = kDst;
  failed.error = Error::make(ErrorKind::DigestMismatch, "bad bytes");
  auto c = fanout.complete(failed);
  EXPECT_EQ(c.failed.size(), 2u);
  EXPECT_TRUE(c.ready.empty());
  // Later images needing that blob fail immediately, without starting it again.
  ImageJob d = job_for(2, "d", "dd");
  d.blobs = {blob("bad")};
  auto added = fanout.add(d);
  EXPECT_TRUE(added.start.empty());
  ASSERT_TRUE(added.failed);
  EXPECT_NE(added.failed->error.find("bad bytes"), std::string::npos);
  // The other blob finishing does not resurrect image a.
  BlobOutcome fine;
  fine.digest = sha256_digest("fine");
  fine.dest = kDst;
  EXPECT_TRUE(fanout.complete(fine).ready.empty());
}

TEST(CopyBlob, AMountThatOpensAnUploadSessionHandsItToTheCopy) {
  FakeRegistry fake;
  fake.refuse_mounts = true;        // a registry that will not mount this blob...
  fake.mount_opens_session = true;  // ...and answers 202 with an upload session instead
  RunControl run;
  CopyBlob copy(fake, fake, run);
  Repository same_host_src{kDst.registry, "other/repo"};
  fake.add_blob(same_host_src, "streamed");
  auto d = [](const std::string& s) { return Descriptor{"", sha256_digest(s), s.size(), {}}; };
  auto r = sync_wait(copy(BlobJob{d("streamed"), same_host_src, kDst, nullptr}));
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.how, BlobHow::Copied);
  std::string opened, used;
  for (const auto& e : fake.events()) {
    if (e.op == "mount") opened = e.session;
    if (e.op == "copy_blob") used = e.session;
  }
  EXPECT_FALSE(opened.empty());
  EXPECT_EQ(used, opened) << "the copy opened another session instead of the mount's";
}

TEST(CopyBlob, PresentMountedFetchedOrStreamed) {
  FakeRegistry fake;
  RunControl run;
  CopyBlob copy(fake, fake, run);
  std::string present = fake.add_blob(kDst, "already here");
  fake.add_blob(kSrc, "to copy");
  auto d = [](const std::string& s) { return Descriptor{"", sha256_digest(s), s.size(), {}}; };

  auto r1 = sync_wait(copy(BlobJob{d("already here"), kSrc, kDst, nullptr}));
  EXPECT_FALSE(r1.error);
  EXPECT_EQ(r1.how, BlobHow::AlreadyPresent);
  EXPECT_EQ(fake.count("copy_blob"), 0u);

  auto r2 = sync_wait(copy(BlobJob{d("to copy"), kSrc, kDst, nullptr}));
  EXPECT_FALSE(r2.error);
  EXPECT_EQ(r2.how, BlobHow::Copied);
  EXPECT_TRUE(fake.has_blob(kDst, sha256_digest("to copy")));
  EXPECT_EQ(fake.count("mount"), 0u);  // different registries: no mount attempt

  // Same registry, other repository: mounted, no bytes moved.
  Repository same_host_src{kDst.registry, "other/repo"};
  fake.add_blob(same_host_src, "mountable");
  auto r3 = sync_wait(copy(BlobJob{d("mountable"), same_host_src, kDst, nullptr}));
  EXPECT_EQ(r3.how, BlobHow::Mounted);
  EXPECT_EQ(fake.count("copy_blob"), 1u);

  // Bytes already fetched while resolving go up from memory.
  auto bytes = std::make_shared<const std::string>("kept layer");
  auto r4 = sync_wait(copy(BlobJob{d("kept layer"), kSrc, kDst, bytes}));
  EXPECT_EQ(r4.how, BlobHow::Copied);
  EXPECT_EQ(fake.count("upload_blob"), 1u);
  EXPECT_EQ(fake.count("copy_blob"), 1u);

  fake.fail_blob_copy[sha256_digest("to fail")] = Error::make(ErrorKind::Forbidden, "read-only", 403);
  fake.add_blob(kSrc, "to fail");
  auto r5 = sync_wait(copy(BlobJob{d("to fail"), kSrc, kDst, nullptr}));
  ASSERT_TRUE(r5.error);
  EXPECT_TRUE(r5.fatal);

  run.cancel("stop");
  auto r6 = sync_wait(copy(BlobJob{d("to copy"), kSrc, kDst, nullptr}));
  ASSERT_TRUE(r6.error);
  EXPECT_EQ(r6.error->kind, ErrorKind::Cancelled);
}

TEST(PushManifests, ChildrenFirstThenTheTagAndTagOnlyForPresentImages) {
  FakeRegistry fake;
  RunControl run;
  std::string amd = fake.add_image(kSrc, {"x"});
  std::string arm = fake.add_image(kSrc, {"y"});
  std::string list = fake.add_list(kSrc, {amd, arm});
  FetchManifests fetch(fake, run);
  auto fetched = sync_wait(fetch(job_for(0, "multi", list)));
  ASSERT_FALSE(fetched.error);
  for (const auto& b : fetched.job.blobs) {
    ASSERT_TRUE(sync_wait(fake.receive_blob(fake, kSrc, kDst, b, {})).ok());
  }
  PushManifests push(fake, run);
  auto outcome = sync_wait(push(fetched.job));
  EXPECT_EQ(outcome.status, ImageStatus::Copied);
  EXPECT_TRUE(fake.violations().empty()) << fake.violations().front();
  std::vector<std::string> order;
  for (const auto& e : fake.events()) {
    if (e.op == "put_manifest") order.push_back(e.ref);
  }
  EXPECT_EQ(order, (std::vector<std::string>{amd, arm, "4.20.8-x86_64-multi"}));

  // Present at the destination under another tag: only the tag is added, from
  // the destination's own copy, never from the source.
  FakeRegistry dest_only;
  std::string existing = dest_only.add_image(kDst, {"z"}, false, "old-tag");
  ImageJob present = job_for(1, "z", existing);
  present.present = true;
  PushManifests push2(dest_only, run);
  auto tagged = sync_wait(push2(present));
  EXPECT_EQ(tagged.status, ImageStatus::Skipped);
  EXPECT_EQ(dest_only.snapshot(kDst).tags.at("4.20.8-x86_64-z"), existing);
  for (const auto& e : dest_only.events()) EXPECT_NE(e.repo, kSrc.str()) << e.op;
  // And when the tag is right already, nothing is written.
  auto again = sync_wait(push2(present));
  EXPECT_EQ(again.status, ImageStatus::Skipped);
  EXPECT_EQ(dest_only.count("put_manifest"), 1u);
}

TEST(PushManifests, APresentImageAsksItsTagOnlyWhenTheCheckDidNot) {
  FakeRegistry dest;
  RunControl run;
  std::string existing = dest.add_image(kDst, {"z"}, false, "4.20.8-x86_64-z");
  PushManifests push(dest, run);
  auto tag_asks = [&] {
    std::size_t n = 0;
    for (const auto& e : dest.events()) n += e.op == "manifest_digest" && e.ref == "4.20.8-x86_64-z";
    return n;
  };
  ImageJob job = job_for(0, "z", existing);
  job.present = true;

  job.tagged = true;  // the check found the tag naming the image: nothing to ask or write
  EXPECT_EQ(sync_wait(push(job)).status, ImageStatus::Skipped);
  EXPECT_EQ(tag_asks(), 0u);
  EXPECT_EQ(dest.count("put_manifest"), 0u);

  job.tagged.reset();  // not asked (a fresh repository): asked here, found right
  EXPECT_EQ(sync_wait(push(job)).status, ImageStatus::Skipped);
  EXPECT_EQ(tag_asks(), 1u);
  EXPECT_EQ(dest.count("put_manifest"), 0u);

  job.tag = "4.20.9-x86_64-z";  // an upgrade: the check found the new tag missing
  job.tagged = false;
  EXPECT_EQ(sync_wait(push(job)).status, ImageStatus::Skipped);
  EXPECT_EQ(dest.count("put_manifest"), 1u);
  EXPECT_EQ(dest.snapshot(kDst).tags.at("4.20.9-x86_64-z"), existing);
  for (const auto& e : dest.events()) EXPECT_FALSE(e.op == "manifest_digest" && e.ref == job.tag) << "asked again";
}

// Re-tagging an image found present puts the bytes the check read (with
// sigstore on it reads them anyway): the manifest is not fetched a second time.
TEST(PushManifests, ReTagsFromTheBytesTheCheckReadWithoutReadingThemAgain) {
  FakeRegistry fake;
  RunControl run;
  std::string existing = fake.add_image(kDst, {"z"}, false, "old-tag");
  CheckDestination check(fake, fake, run, /*sigstore=*/true);
  ImageJob job = job_for(0, "z", existing);
  job.source = kDst;  // its (absent) signatures are asked where it lives
  job.tag = "4.20.9-x86_64-z";
  auto checked = sync_wait(check(job));
  ASSERT_FALSE(checked.error);
  ASSERT_TRUE(checked.job.present);
  ASSERT_TRUE(checked.job.found_manifest.has_value());
  EXPECT_EQ(fake.count("get_manifest"), 1u);
  PushManifests push(fake, run);
  EXPECT_EQ(sync_wait(push(checked.job)).status, ImageStatus::Skipped);
  EXPECT_EQ(fake.snapshot(kDst).tags.at("4.20.9-x86_64-z"), existing);
  EXPECT_EQ(fake.count("get_manifest"), 1u) << "the manifest was fetched twice";
}

TEST(RunLedger, ReleaseWaitsForEveryComponentAndIsRefusedIfOneFailed) {
  RunControl run;
  RunLedger ledger(3, run);  // two components + the release
  ImageJob release = job_for(2, "", "drel");
  release.is_release = true;
  EXPECT_FALSE(ledger.release_ready(release));  // components not done yet
  ImageOutcome ok;
  ok.id = 0;
  ok.status = ImageStatus::Copied;
  EXPECT_TRUE(ledger.record(ok).empty());
  ImageOutcome ok2;
  ok2.id = 1;
  ok2.status = ImageStatus::Skipped;
  auto due = ledger.record(ok2);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(due[0].is_release);

  RunControl run2;
  RunLedger failing(3, run2);
  EXPECT_FALSE(failing.release_ready(release));
  EXPECT_TRUE(failing.record(ok).empty());
  ImageOutcome bad;
  bad.id = 1;
  bad.status = ImageStatus::Failed;
  bad.error = "boom";
  EXPECT_TRUE(failing.record(bad).empty());
  auto outcomes = failing.outcomes();
  ASSERT_TRUE(outcomes[2]);
  EXPECT_EQ(outcomes[2]->status, ImageStatus::Failed);
  EXPECT_NE(outcomes[2]->error.find("1 of 2 components failed"), std::string::npos) << outcomes[2]->error;
  EXPECT_EQ(run2.progress.images_failed.load(), 2u);
}

TEST(RunLedger, AFatalOutcomeStopsTheRun) {
  RunControl run;
  bool hook = false;
  run.set_on_cancel([&] { hook = true; });
  RunLedger ledger(2, run);
  ImageOutcome fatal;
  fatal.id = 0;
  fatal.status = ImageStatus::Failed;
  fatal.fatal = true;
  fatal.error = "destination refused the credentials";
  (void)ledger.record(fatal);
  EXPECT_TRUE(run.cancelled());
  EXPECT_TRUE(hook);
  EXPECT_EQ(run.reason(), "destination refused the credentials");
}

}  // namespace
}  // namespace fastsync::stages
