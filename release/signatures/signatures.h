// OpenShift release signatures (the GPG kind the cluster-version operator
// checks): where the keys come from, what a signed document must say, and the
// ConfigMap a disconnected cluster reads them from. No OpenPGP here: the
// cryptography is GPGME's (release/signatures/gpg_verifier.h); fetching is an endpoint's
// (registry/client/signature_stores.h, or an archive).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "registry/core/result.h"
#include "registry/core/signature_source.h"

namespace fastsync::release {

// The ConfigMap in release-manifests/ that carries the verifier keys.
inline constexpr const char* kVerificationConfigMapAnnotation = "release.openshift.io/verification-config-map";
inline constexpr const char* kVerifierKeyPrefix = "verifier-public-key-";

// One OpenPGP public key (armored or binary), named for messages.
struct PublicKey {
  std::string name;  // "verifier-public-key-redhat" (payload) or the keyring file
  std::string data;
};

bool is_verification_config_map(std::string_view manifest);
// The `verifier-public-key-*` entries of a verification ConfigMap, YAML (block
// scalars, as the payload ships them) or JSON. `file` names it in errors.
Result<std::vector<PublicKey>> parse_verification_keys(std::string_view manifest, const std::string& file);

struct VerifiedSignature {
  std::string origin;
  std::string bytes;     // exactly as fetched: what the ConfigMap carries
  std::string key;       // which key verified it: "verifier-public-key-redhat (fingerprint …)"
  std::string identity;  // critical.identity.docker-reference
};

// The signed document's own checks (the signature itself is GPG's): type
// "atomic container signature", the release's digest, an identity. Returns
// the identity, or why the document does not vouch for `digest`.
Result<std::string> check_signed_document(std::string_view document, const std::string& digest);

// oc's names: ConfigMap "sha256-<hex>", file "signature-sha256-<first 16 hex>.json".
std::string signature_config_map_name(const std::string& digest);
std::string signature_config_map_file(const std::string& digest);
// The ConfigMap (JSON) oc adm release mirror writes: namespace
// openshift-config-managed, the verification-signatures label, binaryData
// "sha256-<hex>-1", "-2", … holding `signatures` in order.
std::string signature_config_map_json(const std::string& digest, const std::vector<std::string>& signatures);

// Checks candidates against a set of keys (GPGME in the product, a fake in unit tests).
class SignatureVerifier {
 public:
  virtual ~SignatureVerifier() = default;
  // The candidate verified by one of the keys, its document checked against
  // `digest`; otherwise why not (an Error of kind Unverified).
  virtual Result<VerifiedSignature> verify(const SignatureCandidate& candidate, const std::string& digest) = 0;
};

}  // namespace fastsync::release
