// Release signatures checked with GPGME against a chosen set of public keys:
// the keys go into a keyring of their own (a private GNUPGHOME that lives as
// long as the verifier), so the user's own keyring never decides anything.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "release/signatures/signatures.h"

namespace fastsync::release {

class GpgVerifier : public SignatureVerifier {
 public:
  // Imports `keys` (armored or binary); an error names a key nothing could be read from.
  static Result<std::unique_ptr<GpgVerifier>> create(const std::vector<PublicKey>& keys);
  ~GpgVerifier() override;
  GpgVerifier(const GpgVerifier&) = delete;
  GpgVerifier& operator=(const GpgVerifier&) = delete;

  // Blocking (GPGME runs gpg): call it off the HTTP engine's thread. Thread-safe.
  Result<VerifiedSignature> verify(const SignatureCandidate& candidate, const std::string& digest) override;

 private:
  struct Impl;
  explicit GpgVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;
};

}  // namespace fastsync::release
