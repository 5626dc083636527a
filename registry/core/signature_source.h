// Where a release's GPG signatures come from, as an interface: signature
// stores over HTTP (registry/client/signature_stores.h) or an archive carried across
// an air gap (release/archive/archive.h). Curl-free: part of the core.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "registry/core/task.h"

namespace fastsync {

// oc's limits: at most nine signatures per store, at most 50 KiB each.
inline constexpr int kMaxSignaturesPerStore = 9;
inline constexpr std::size_t kMaxSignatureBytes = 50 * 1024;

// A signature as fetched, before anyone trusts it.
struct SignatureCandidate {
  std::string origin;  // "<store>/sha256=<hex>/signature-1", or "archive …"
  std::string bytes;
};

struct FetchedSignatures {
  std::vector<SignatureCandidate> found;
  std::vector<std::string> problems;  // a store that could not be read, one line each
};

class SignatureSource {
 public:
  virtual ~SignatureSource() = default;
  // The signatures of the release whose manifest digest is `digest`.
  virtual Task<FetchedSignatures> release_signatures(const std::string& digest) = 0;
};

}  // namespace fastsync
