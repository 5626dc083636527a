// Stage 1's second half: the release's GPG signatures, fetched from wherever
// the run's source keeps them (signature stores, an archive) and verified
// against --signature-keyring or the keys the payload itself carries.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "registry/core/task.h"
#include "release/payload/release.h"
#include "release/signatures/signatures.h"

namespace fastsync::stages {

using VerifierFactory =
    std::function<Result<std::unique_ptr<release::SignatureVerifier>>(const std::vector<release::PublicKey>&)>;

struct SignatureSettings {
  SignatureSource* source = nullptr;        // null: release signatures are not looked at (--no-signatures)
  std::vector<release::PublicKey> keyring;  // --signature-keyring; empty: the payload's keys
  bool required = false;                    // --require-signatures: no verified signature stops the run
  VerifierFactory make_verifier;
};

struct SignatureCheck {
  bool checked = false;
  std::string keys;                                  // which keys, from where
  std::vector<release::VerifiedSignature> verified;  // unique, in the order found
  std::vector<std::string> rejected;                 // "origin: why", one per signature refused
  std::vector<std::string> problems;                 // a store that could not be read
  // One line when nothing verified (empty otherwise): what the cluster will do about it.
  std::string warning(const release::Release& release) const;
};

// Never fails: what could not be fetched or verified is in the result.
Task<SignatureCheck> verify_release_signatures(const SignatureSettings& settings, const release::Release& release);

}  // namespace fastsync::stages
