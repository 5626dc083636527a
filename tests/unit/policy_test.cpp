// The rules every retry and every token follows, and the sizes users type.
#include <gtest/gtest.h>

#include "cli/options.h"
#include "registry/core/retry.h"
#include "registry/distribution/auth.h"
#include "registry/distribution/upload_chunks.h"

namespace fastsync {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryPolicy, RetriesOnlyTransientErrorsWithinTheBudget) {
  RetryPolicy p;
  p.retries = 2;
  p.base_delay = milliseconds(100);
  for (auto kind :
       {ErrorKind::Network, ErrorKind::Stalled, ErrorKind::Server, ErrorKind::RateLimited, ErrorKind::AuthExpired}) {
    auto e = Error::make(kind, "x");
    ASSERT_TRUE(p.next_delay(e, 0).has_value()) << to_string(kind);
    EXPECT_TRUE(p.next_delay(e, 1).has_value());
    EXPECT_FALSE(p.next_delay(e, 2).has_value()) << "budget spent";
  }
  for (auto kind : {ErrorKind::NotFound, ErrorKind::AuthDenied, ErrorKind::Forbidden, ErrorKind::Tls,
                    ErrorKind::Invalid, ErrorKind::Protocol, ErrorKind::DigestMismatch, ErrorKind::Cancelled}) {
    EXPECT_FALSE(p.next_delay(Error::make(kind, "x"), 0).has_value()) << to_string(kind);
  }
  // A whole-blob copy fetches corrupt bytes again.
  RetryPolicy::Scope copy;
  copy.digest_mismatch = true;
  EXPECT_TRUE(p.next_delay(Error::make(ErrorKind::DigestMismatch, "x"), 0, copy).has_value());
}

TEST(RetryPolicy, BacksOffExponentiallyWithJitterAndHonoursRetryAfterUpToItsCap) {
  RetryPolicy p;
  p.retries = 10;
  p.base_delay = milliseconds(100);
  p.max_delay = milliseconds(1000);
  p.max_retry_after = seconds(60);
  for (int retry = 1; retry <= 6; ++retry) {
    auto d = p.backoff(retry);
    double full = std::min(1000.0, 100.0 * (1 << (retry - 1)));
    EXPECT_GE(d.count(), full * 0.5 - 1) << retry;
    EXPECT_LE(d.count(), full) << retry;
  }
  auto limited = Error::make(ErrorKind::RateLimited, "429");
  limited.retry_after = seconds(7);
  EXPECT_EQ(p.next_delay(limited, 0), milliseconds(7000));
  limited.retry_after = seconds(3600);
  EXPECT_EQ(p.next_delay(limited, 0), milliseconds(60000));
}

TEST(TokenTiming, RefreshedAheadOfExpiryAndNeverSentInItsLastTenth) {
  EXPECT_EQ(Authenticator::refresh_margin(seconds(2)), milliseconds(400));
  EXPECT_EQ(Authenticator::send_margin(seconds(2)), milliseconds(200));
  EXPECT_EQ(Authenticator::refresh_margin(seconds(300)), seconds(30));
  EXPECT_EQ(Authenticator::send_margin(seconds(300)), seconds(5));
}

TEST(AccessScope, AMountAsksPullOnItsSourceUnlessItIsTheRepositoryItself) {
  EXPECT_EQ((AccessScope{"team/app", false, {}}.str()), "repository:team/app:pull");
  EXPECT_EQ((AccessScope{"team/app", true, "base/img"}.str()),
            "repository:team/app:pull,push repository:base/img:pull");
  // The probe of a fresh repository mounts from itself: its own pull,push covers it.
  EXPECT_EQ((AccessScope{"team/app", true, "team/app"}.str()), "repository:team/app:pull,push");
}

TEST(UploadChunks, ShrinkOnEach413AndRetryOnlyWhenTheNextRequestIsSmaller) {
  constexpr std::uint64_t MiB = 1u << 20;
  UploadChunks chunks;
  EXPECT_EQ(chunks.chunk(), 0u);  // whole blobs until a 413
  auto first = chunks.refused(18 * MiB + 300 * 1024);
  EXPECT_TRUE(first.switched);
  EXPECT_TRUE(first.retry);
  EXPECT_EQ(chunks.chunk(), 16 * MiB);
  auto second = chunks.refused(7 * MiB + 512 * 1024);  // another upload, a 7.5 MiB blob
  EXPECT_EQ(chunks.chunk(), 4 * MiB);
  EXPECT_TRUE(second.retry);
  // A 22.5 MiB upload that went out whole before all this is refused last:
  // nothing left to shrink for it, yet the next attempt (4 MiB chunks) is smaller.
  auto late = chunks.refused(22 * MiB + 512 * 1024);
  EXPECT_FALSE(late.switched);
  EXPECT_TRUE(late.retry);
  EXPECT_EQ(chunks.chunk(), 4 * MiB);
  // Down to the floor: a refused 1 MiB chunk cannot be helped.
  chunks.refused(2 * MiB);
  EXPECT_EQ(chunks.chunk(), 1 * MiB);
  EXPECT_FALSE(chunks.refused(1 * MiB).retry);
  // The registry's own minimum wins over ours.
  chunks.set_minimum(5 * MiB);
  EXPECT_EQ(chunks.chunk(), 5 * MiB);
  // --upload-chunk-size: chunks from the start.
  EXPECT_EQ(UploadChunks(8 * MiB).chunk(), 8 * MiB);
}

TEST(Sizes, ParseAsUsersWriteThem) {
  EXPECT_EQ(cli::parse_size("4GiB"), 4ull << 30);
  EXPECT_EQ(cli::parse_size("20MiB"), 20ull << 20);
  EXPECT_EQ(cli::parse_size("8m"), 8ull << 20);
  EXPECT_EQ(cli::parse_size("512KiB"), 512ull << 10);
  EXPECT_EQ(cli::parse_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(cli::parse_size("4GB"), 4000000000ull);
  EXPECT_EQ(cli::parse_size("1048576"), 1048576ull);
  EXPECT_FALSE(cli::parse_size("").has_value());
  EXPECT_FALSE(cli::parse_size("GiB").has_value());
  EXPECT_FALSE(cli::parse_size("4 parsecs").has_value());
  EXPECT_FALSE(cli::parse_size("-1MiB").has_value());
}

}  // namespace
}  // namespace fastsync
