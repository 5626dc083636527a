#include "stages/verify_release.h"

#include <fmt/format.h>

#include <set>

namespace fastsync::stages {

std::string SignatureCheck::warning(const release::Release& release) const {
  if (!checked || !verified.empty()) return {};
  std::string why = !rejected.empty()   ? fmt::format("{} refused, first: {}", rejected.size(), rejected.front())
                    : !problems.empty() ? problems.front()
                                        : "none found";
  return fmt::format("release {} ({}) has no verified signature ({}): a disconnected cluster will refuse to upgrade "
                     "to it",
                     release.tag, release.manifest.digest, why);
}

Task<SignatureCheck> verify_release_signatures(const SignatureSettings& settings, const release::Release& release) {
  SignatureCheck check;
  if (!settings.source) co_return check;
  check.checked = true;
  const std::vector<release::PublicKey>& keys =
      settings.keyring.empty() ? release.verification_keys : settings.keyring;
  if (keys.empty()) {
    check.problems.push_back(fmt::format("the release payload carries no verifier keys (no ConfigMap annotated {}); "
                                         "give --signature-keyring",
                                         release::kVerificationConfigMapAnnotation));
    co_return check;
  }
  std::set<std::string> key_names;
  for (const auto& k : keys) key_names.insert(k.name);
  std::string names;
  for (const auto& n : key_names) names += (names.empty() ? "" : ", ") + n;
  check.keys = settings.keyring.empty() ? fmt::format("{} in the release payload ({})", names, release.verification_file)
                                        : names;
  std::string digest = release.manifest.digest;
  auto fetched = co_await settings.source->release_signatures(digest);
  check.problems = std::move(fetched.problems);
  if (fetched.found.empty()) co_return check;

  // GPGME runs gpg: off the engine's thread.
  auto verify_all = [&]() {
    auto verifier = settings.make_verifier(keys);
    if (!verifier) {
      check.problems.push_back(verifier.error().message);
      return true;
    }
    std::set<std::string> seen;
    for (const auto& candidate : fetched.found) {
      if (!seen.insert(candidate.bytes).second) continue;  // two stores, one signature
      auto verified = (*verifier)->verify(candidate, digest);
      if (verified) {
        check.verified.push_back(std::move(*verified));
      } else {
        check.rejected.push_back(verified.error().message);
      }
    }
    return true;
  };
  co_await run_blocking(verify_all);
  co_return check;
}

}  // namespace fastsync::stages
