#include "release/signatures/gpg_verifier.h"

#include <fmt/format.h>
#include <gpgme.h>

#include <chrono>
#include <clocale>
#include <cstdlib>
#include <filesystem>
#include <map>

namespace fastsync::release {
namespace {

struct ContextDeleter {
  void operator()(gpgme_ctx_t c) const { gpgme_release(c); }
};
using Context = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, ContextDeleter>;
struct DataDeleter {
  void operator()(gpgme_data_t d) const { gpgme_data_release(d); }
};
using Data = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, DataDeleter>;
struct KeyDeleter {
  void operator()(gpgme_key_t k) const { gpgme_key_unref(k); }
};
using Key = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, KeyDeleter>;

std::string gpg_text(gpgme_error_t err) { return gpgme_strerror(err); }

Data data_from(const std::string& bytes) {
  gpgme_data_t d = nullptr;
  if (gpgme_data_new_from_mem(&d, bytes.data(), bytes.size(), /*copy=*/1) != 0) return nullptr;
  return Data(d);
}

void initialise_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    gpgme_set_locale(nullptr, LC_CTYPE, "C");
  });
}

}  // namespace

struct GpgVerifier::Impl {
  std::filesystem::path home;
  Context ctx;
  std::map<std::string, std::string> key_names;  // primary fingerprint -> name
  ~Impl() {
    ctx.reset();
    std::error_code ignored;
    if (!home.empty()) std::filesystem::remove_all(home, ignored);
  }
};

GpgVerifier::GpgVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpgVerifier::~GpgVerifier() = default;

Result<std::unique_ptr<GpgVerifier>> GpgVerifier::create(const std::vector<PublicKey>& keys) {
  initialise_once();
  auto impl = std::make_unique<Impl>();
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fastsync-gnupg-XXXXXX";
  if (!::mkdtemp(pattern.data())) {
    return Error::make(ErrorKind::LocalIo,
                       fmt::format("cannot create a keyring directory under {}", tmp && *tmp ? tmp : "/tmp"));
  }
  impl->home = pattern;
  gpgme_ctx_t raw = nullptr;
  if (auto err = gpgme_new(&raw); err != 0) {
    return Error::make(ErrorKind::Protocol, fmt::format("GPGME: {}", gpg_text(err)));
  }
  impl->ctx.reset(raw);
  if (auto err = gpgme_ctx_set_engine_info(impl->ctx.get(), GPGME_PROTOCOL_OpenPGP, nullptr, impl->home.c_str());
      err != 0) {
    return Error::make(ErrorKind::Protocol, fmt::format("GPGME: cannot use gpg ({})", gpg_text(err)));
  }
  for (const auto& key : keys) {
    auto data = data_from(key.data);
    if (!data) return Error::make(ErrorKind::Protocol, "GPGME: out of memory");
    if (auto err = gpgme_op_import(impl->ctx.get(), data.get()); err != 0) {
      return Error::make(ErrorKind::Invalid,
                         fmt::format("{}: cannot import it as an OpenPGP public key ({})", key.name, gpg_text(err)));
    }
    gpgme_import_result_t imported = gpgme_op_import_result(impl->ctx.get());
    bool any = false;
    for (auto* status = imported ? imported->imports : nullptr; status; status = status->next) {
      if (status->result != 0 || !status->fpr) continue;
      impl->key_names[status->fpr] = key.name;
      any = true;
    }
    if (!any) return Error::make(ErrorKind::Invalid, fmt::format("{}: holds no OpenPGP public key", key.name));
  }
  return std::unique_ptr<GpgVerifier>(new GpgVerifier(std::move(impl)));
}

Result<VerifiedSignature> GpgVerifier::verify(const SignatureCandidate& candidate, const std::string& digest) {
  auto refuse = [&](const std::string& why) {
    return Error::make(ErrorKind::Unverified, fmt::format("{}: {}", candidate.origin, why));
  };
  std::lock_guard lock(mutex_);
  auto signature = data_from(candidate.bytes);
  gpgme_data_t plain_raw = nullptr;
  if (!signature || gpgme_data_new(&plain_raw) != 0) return Error::make(ErrorKind::Protocol, "GPGME: out of memory");
  Data plain(plain_raw);
  if (auto err = gpgme_op_verify(impl_->ctx.get(), signature.get(), nullptr, plain.get()); err != 0) {
    return refuse(fmt::format("not an OpenPGP signed message ({})", gpg_text(err)));
  }
  gpgme_verify_result_t result = gpgme_op_verify_result(impl_->ctx.get());
  if (!result || !result->signatures) return refuse("holds no signature");
  std::string key_name, fingerprint, why = "not signed by any of the keys";
  bool good = false;
  for (auto* s = result->signatures; s && !good; s = s->next) {
    switch (gpgme_err_code(s->status)) {
      case GPG_ERR_NO_ERROR:
        break;
      case GPG_ERR_SIG_EXPIRED:
        why = "the signature has expired";
        continue;
      case GPG_ERR_KEY_EXPIRED:
        why = "the signing key has expired";
        continue;
      case GPG_ERR_CERT_REVOKED:
        why = "the signing key is revoked";
        continue;
      case GPG_ERR_BAD_SIGNATURE:
        why = "bad signature (the signed bytes were changed)";
        continue;
      case GPG_ERR_NO_PUBKEY:
        why = fmt::format("signed by key {}, which is not among the keys", s->fpr ? s->fpr : "?");
        continue;
      default:
        why = fmt::format("signature not valid ({})", gpg_text(s->status));
        continue;
    }
    if (s->exp_timestamp != 0 &&
        static_cast<std::int64_t>(s->exp_timestamp) <
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count()) {
      why = "the signature has expired";
      continue;
    }
    // A subkey may have made it: name the primary key it belongs to.
    gpgme_key_t raw_key = nullptr;
    if (!s->fpr || gpgme_get_key(impl_->ctx.get(), s->fpr, &raw_key, 0) != 0 || !raw_key) continue;
    Key key(raw_key);
    if (!key->subkeys || !key->subkeys->fpr) continue;
    auto named = impl_->key_names.find(key->subkeys->fpr);
    if (named == impl_->key_names.end()) continue;
    key_name = named->second;
    fingerprint = key->subkeys->fpr;
    good = true;
  }
  if (!good) return refuse(why);
  std::size_t length = 0;
  char* bytes = gpgme_data_release_and_get_mem(plain.release(), &length);
  std::string document(bytes ? bytes : "", bytes ? length : 0);
  gpgme_free(bytes);
  auto identity = check_signed_document(document, digest);
  if (!identity) return refuse(identity.error().message);
  return VerifiedSignature{candidate.origin, candidate.bytes, fmt::format("{} ({})", key_name, fingerprint), *identity};
}

}  // namespace fastsync::release
