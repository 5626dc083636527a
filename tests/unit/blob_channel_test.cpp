// The channel between a download and its consumer: bounded, verified before
// the last byte leaves, and it tells each side when the other gave up.
#include "registry/transfer/blob_channel.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "registry/core/digest.h"

namespace fastsync {
namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
  return s;
}

std::string drain_some(BlobChannel& ch, size_t max = 1 << 20) {
  std::string out(max, '\0');
  auto c = ch.read_some(out.data(), out.size());
  EXPECT_EQ(c.flow, Flow::Continue);
  out.resize(c.size);
  return out;
}

TEST(BlobChannel, PausesWhenFullAndHoldsBackLastByteUntilVerified) {
  std::string blob = pattern(1000);
  BlobChannel ch(sha256_digest(blob), blob.size(), "test", 600);
  EXPECT_EQ(ch.write(std::string_view(blob).substr(0, 500)), Flow::Continue);
  // Less than a batch (here the 600-byte ring) is buffered: the reader waits for more.
  char probe;
  EXPECT_EQ(ch.read_some(&probe, 1).flow, Flow::Pause);
  // 500 more do not fit in 600: the writer must wait and offer the same bytes again,
  // and a reader holding out for a batch must now take what there is.
  EXPECT_EQ(ch.write(std::string_view(blob).substr(500, 500)), Flow::Pause);
  std::string got = drain_some(ch);
  EXPECT_EQ(got, blob.substr(0, 500));
  EXPECT_EQ(ch.write(std::string_view(blob).substr(500, 500)), Flow::Continue);
  // Everything is written, but the final byte waits for verification.
  EXPECT_EQ(ch.read_some(&probe, 1).flow, Flow::Pause);
  EXPECT_TRUE(ch.finish_writer(Status{}).ok());
  std::string last = drain_some(ch);
  EXPECT_EQ(got + last, blob);
  auto end = ch.read_some(&probe, 1);
  EXPECT_EQ(end.flow, Flow::Continue);
  EXPECT_EQ(end.size, 0u);
}

TEST(BlobChannel, ServesTheReaderInBatches) {
  std::string blob = pattern(200000);
  BlobChannel ch(sha256_digest(blob), blob.size(), "test", 256 * 1024);
  std::string got;
  std::size_t pos = 0;
  std::vector<std::size_t> reads;
  while (pos < blob.size()) {
    std::size_t n = std::min<std::size_t>(16384, blob.size() - pos);  // curl's write chunk
    ASSERT_EQ(ch.write(std::string_view(blob).substr(pos, n)), Flow::Continue);
    pos += n;
    std::string buf(BlobChannel::kReadBatch, '\0');
    auto c = ch.read_some(buf.data(), buf.size());
    if (c.flow == Flow::Continue && c.size > 0) {
      reads.push_back(c.size);
      got.append(buf.data(), c.size);
    }
  }
  ASSERT_TRUE(ch.finish_writer(Status{}).ok());
  got += drain_some(ch);
  EXPECT_EQ(got, blob);
  ASSERT_FALSE(reads.empty());
  for (std::size_t n : reads) EXPECT_EQ(n, BlobChannel::kReadBatch);  // never a dribble of 16 KiB writes
}

TEST(BlobChannel, DigestMismatchKeepsTheLastByteAndAbortsTheReader) {
  std::string blob = pattern(100);
  BlobChannel ch(sha256_digest("something else"), blob.size(), "reg/repo@x", 1024);
  EXPECT_EQ(ch.write(blob), Flow::Continue);
  char buf[128];
  EXPECT_EQ(ch.read_some(buf, sizeof buf).flow, Flow::Pause);  // nothing leaves before verification
  auto verdict = ch.finish_writer(Status{});
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.error().kind, ErrorKind::DigestMismatch);
  EXPECT_NE(verdict.error().message.find("reg/repo@x"), std::string::npos);
  EXPECT_EQ(ch.read_some(buf, sizeof buf).flow, Flow::Abort);
}

TEST(BlobChannel, RejectsMoreBytesThanTheDescriptorStatesAndShortBodies) {
  BlobChannel longer(sha256_digest("abc"), 3, "t", 64);
  EXPECT_EQ(longer.write("abcd"), Flow::Abort);
  EXPECT_EQ(longer.finish_writer(Status{}).error().kind, ErrorKind::DigestMismatch);

  BlobChannel shorter(sha256_digest("abc"), 3, "t", 64);
  EXPECT_EQ(shorter.write("ab"), Flow::Continue);
  auto v = shorter.finish_writer(Status{});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("received 2 bytes"), std::string::npos);
}

TEST(BlobChannel, ReaderGivingUpAbortsTheWriterWithTheReadersError) {
  std::string blob = pattern(10);
  BlobChannel ch(sha256_digest(blob), blob.size(), "t", 64);
  ch.close_reader(Error::make(ErrorKind::Server, "PUT blob: HTTP 503", 503));
  EXPECT_TRUE(ch.reader_closed());
  EXPECT_EQ(ch.write(blob), Flow::Abort);
  // The download reports why it stopped: the upload's 503, transient, so the copy is retried.
  auto why = ch.reader_error();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->kind, ErrorKind::Server);
  EXPECT_TRUE(why->retryable());
}

TEST(ChannelSource, ServesOneWindowOfTheBlobPerRequestInOrder) {
  std::string blob = pattern(1000);
  auto ch = std::make_shared<BlobChannel>(sha256_digest(blob), blob.size(), "t", 4096);
  ASSERT_EQ(ch->write(blob), Flow::Continue);
  ASSERT_TRUE(ch->finish_writer(Status{}).ok());
  ChannelSource first(ch, 0, 400), second(ch, 400, 600), out_of_order(ch, 0, 400);
  std::string got(1000, '\0');
  auto a = first.read(got.data(), 1000);  // never past its window
  EXPECT_EQ(a.size, 400u);
  EXPECT_EQ(first.read(got.data(), 1000).size, 0u);                  // its window is done
  EXPECT_EQ(out_of_order.read(got.data(), 1000).flow, Flow::Abort);  // bytes 0.. are gone
  auto b = second.read(got.data() + 400, 1000);
  EXPECT_EQ(b.size, 600u);
  EXPECT_EQ(got, blob);
}

TEST(BlobChannel, AWaitingReaderIsServedWithoutAFullBatchAfterAShortWait) {
  std::string blob = pattern(BlobChannel::kReadBatch * 2);
  BlobChannel ch(sha256_digest(blob), blob.size(), "t", blob.size());
  std::string buf(blob.size(), '\0');
  EXPECT_EQ(ch.read_some(buf.data(), buf.size()).flow, Flow::Pause);  // nothing yet: it waits
  ASSERT_EQ(ch.write(std::string_view(blob).substr(0, 100)), Flow::Continue);
  EXPECT_EQ(ch.read_some(buf.data(), buf.size()).flow, Flow::Pause);                        // holds out for a batch...
  std::this_thread::sleep_for(BlobChannel::kMaxBatchWait + std::chrono::milliseconds(20));  // the wait under test
  auto c = ch.read_some(buf.data(), buf.size());  // ...but not for ever: a slow source still flows
  EXPECT_EQ(c.flow, Flow::Continue);
  EXPECT_EQ(c.size, 100u);
}

TEST(BlobChannel, BlockingReaderGetsEveryByteInOrder) {
  std::string blob = pattern(300000);
  BlobChannel ch(sha256_digest(blob), blob.size(), "t", 4096);
  std::string received;
  std::thread reader([&] {
    char buf[1000];
    while (true) {
      auto n = ch.read_blocking(buf, sizeof buf);
      ASSERT_TRUE(n.ok()) << n.error().message;
      if (*n == 0) break;
      received.append(buf, *n);
    }
  });
  // Writer side: retry a paused chunk, as curl would after a wake. The reader
  // thread drains, so each retry eventually fits.
  size_t pos = 0;
  while (pos < blob.size()) {
    size_t n = std::min<size_t>(3000, blob.size() - pos);
    if (ch.write(std::string_view(blob).substr(pos, n)) == Flow::Continue) {
      pos += n;
    } else {
      std::this_thread::yield();
    }
  }
  EXPECT_TRUE(ch.finish_writer(Status{}).ok());
  reader.join();
  EXPECT_EQ(received, blob);
}

// Hashing on the reader's side: the writer's verdict checks only the size,
// and the reader verifies before the last byte leaves — a wrong blob ends in
// DigestMismatch with its last byte never handed out.
std::pair<std::string, std::optional<Error>> read_reader_hashed(const std::string& blob, const std::string& digest) {
  BlobChannel ch(digest, blob.size(), "reg/repo@x", 1024);
  ch.hash_on_reader_side();
  std::string received;
  std::optional<Error> error;
  std::thread reader([&] {
    char buf[700];
    while (true) {
      auto n = ch.read_blocking(buf, sizeof buf);
      if (!n) {
        error = n.error();
        break;
      }
      if (*n == 0) break;
      received.append(buf, *n);
    }
  });
  for (size_t pos = 0; pos < blob.size();) {
    size_t n = std::min<size_t>(500, blob.size() - pos);
    if (ch.write(std::string_view(blob).substr(pos, n)) == Flow::Continue) {
      pos += n;
    } else {
      std::this_thread::yield();
    }
  }
  EXPECT_TRUE(ch.finish_writer(Status{}).ok());  // the size is right: the reader judges the bytes
  reader.join();
  return {received, error};
}

TEST(BlobChannel, AReaderHashingOnItsOwnThreadGetsARightBlobWhole) {
  std::string blob = pattern(50000);
  auto [received, error] = read_reader_hashed(blob, sha256_digest(blob));
  EXPECT_FALSE(error) << error->message;
  EXPECT_EQ(received, blob);
  auto [nothing, empty_error] = read_reader_hashed("", sha256_digest(""));
  EXPECT_FALSE(empty_error);
  EXPECT_TRUE(nothing.empty());
}

TEST(BlobChannel, AReaderHashingOnItsOwnThreadNeverHandsOutTheLastByteOfAWrongBlob) {
  std::string blob = pattern(50000);
  auto [received, error] = read_reader_hashed(blob, sha256_digest("something else"));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, ErrorKind::DigestMismatch);
  EXPECT_NE(error->message.find("reg/repo@x"), std::string::npos);
  EXPECT_LT(received.size(), blob.size());
  auto [none, empty_error] = read_reader_hashed("", sha256_digest("not empty"));
  ASSERT_TRUE(empty_error);
  EXPECT_EQ(empty_error->kind, ErrorKind::DigestMismatch);
}

TEST(ChannelSink, ResumesWithRangeOrSkipsWhenRangeIgnored) {
  std::string blob = pattern(50);
  auto ch = std::make_shared<BlobChannel>(sha256_digest(blob), blob.size(), "t", 64);
  ASSERT_EQ(ch->write(std::string_view(blob).substr(0, 20)), Flow::Continue);

  // The server honoured Range: the body starts at byte 20.
  ChannelSink ranged(ch, 20);
  EXPECT_EQ(ranged.begin(206, {{"content-range", "bytes 20-49/50"}}), Flow::Continue);
  EXPECT_EQ(ranged.write(std::string_view(blob).substr(20, 10)), Flow::Continue);
  EXPECT_EQ(ch->written(), 30u);

  // A 206 starting elsewhere is refused.
  ChannelSink wrong(ch, 30);
  EXPECT_EQ(wrong.begin(206, {{"content-range", "bytes 0-49/50"}}), Flow::Abort);
  EXPECT_TRUE(wrong.range_rejected());

  // The server ignored Range (200): the first 30 bytes are dropped.
  ChannelSink whole(ch, 30);
  EXPECT_EQ(whole.begin(200, {}), Flow::Continue);
  EXPECT_EQ(whole.write(std::string_view(blob).substr(0, 25)), Flow::Continue);
  EXPECT_EQ(whole.write(std::string_view(blob).substr(25, 25)), Flow::Continue);
  EXPECT_EQ(ch->written(), 50u);
  EXPECT_TRUE(ch->finish_writer(Status{}).ok());
  std::string all(64, '\0');
  auto c = ch->read_some(all.data(), all.size());
  all.resize(c.size);
  EXPECT_EQ(all, blob);
}

}  // namespace
}  // namespace fastsync
