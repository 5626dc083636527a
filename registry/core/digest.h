// SHA-256 content digests ("sha256:<64 hex>") and base64, both via OpenSSL.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fastsync {

// Incremental SHA-256 (OpenSSL EVP). Cheap to move, not to copy.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // An independent hasher in the same state (to roll back to later).
  Sha256 clone() const;
  // "sha256:<hex>"; the hasher is finished afterwards.
  std::string finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// "sha256:<hex>" of `bytes`.
std::string sha256_digest(std::string_view bytes);

// True for "sha256:" followed by exactly 64 lowercase hex digits. Other
// algorithms are rejected: every digest fastsync verifies must be checkable.
bool is_sha256_digest(std::string_view digest);

std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace fastsync
