// Unit tests for the small parsers every request depends on.
#include <gtest/gtest.h>

#include "registry/core/digest.h"
#include "registry/core/reference.h"
#include "registry/distribution/auth_file.h"
#include "registry/distribution/error_body.h"
#include "registry/distribution/registry.h"
#include "registry/distribution/www_authenticate.h"
#include "registry/net/url.h"

namespace fastsync {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(Reference, ParsesHostPortPathTagAndDigest) {
  auto r = Reference::parse("127.0.0.1:5000/openshift-release-dev/ocp-release:4.20.8-x86_64");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "openshift-release-dev/ocp-release");
  EXPECT_EQ(r->tag, "4.20.8-x86_64");
  EXPECT_EQ(r->digest, "");
  EXPECT_EQ(r->identifier(), "4.20.8-x86_64");

  auto d = Reference::parse("quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + kDigest);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->registry, "quay.io");
  EXPECT_EQ(d->digest, kDigest);
  EXPECT_EQ(d->identifier(), kDigest);
  EXPECT_EQ(d->str(), "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + kDigest);

  auto both = Reference::parse("localhost/a/b:t@" + kDigest);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->tag, "t");
  EXPECT_EQ(both->identifier(), kDigest);

  auto v6 = Reference::parse("[::1]:5000/repo");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->registry, "[::1]:5000");
}

TEST(Reference, RejectsBadInput) {
  EXPECT_FALSE(Reference::parse("ubuntu:22.04").ok());  // no registry host
  EXPECT_FALSE(Reference::parse("quay.io/UPPER/case").ok());
  EXPECT_FALSE(Reference::parse("quay.io/repo@sha256:abc").ok());
  EXPECT_FALSE(Reference::parse("quay.io/repo@md5:" + std::string(32, 'a')).ok());
  EXPECT_FALSE(Reference::parse("quay.io/repo:bad tag").ok());
  EXPECT_FALSE(Reference::parse("quay.io/a//b").ok());
  auto e = Reference::parse("quay.io/repo@sha256:abc");
  EXPECT_NE(e.error().message.find("sha256"), std::string::npos);
}

TEST(RegistryHost, APathAfterTheHostIsAPrefix) {
  auto h = RegistryHost::parse("https://registry.example.com:5000/mirror/ocp/");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->host, "registry.example.com:5000");
  EXPECT_EQ(h->prefix, "mirror/ocp");
  EXPECT_EQ(RegistryHost::parse("[::1]:5000/m")->prefix, "m");
  EXPECT_TRUE(RegistryHost::parse("127.0.0.1:5000")->prefix.empty());
  EXPECT_NE(RegistryHost::parse("registry.example.com/a//b").error().message.find("\"a//b\" after the host"),
            std::string::npos);
}

TEST(NestRepository, KeepsTheFirstComponentsAndJoinsTheRestAsOcMirrorDoes) {
  EXPECT_EQ(nest_repository("mirror/openshift/release", 0), "mirror/openshift/release");
  EXPECT_EQ(nest_repository("mirror/openshift/release", 3), "mirror/openshift/release");
  EXPECT_EQ(nest_repository("mirror/openshift/release", 2), "mirror/openshift-release");
  EXPECT_EQ(nest_repository("a/b/c/d", 2), "a/b-c-d");
  EXPECT_EQ(nest_repository("a/b/c/d", 1), "a-b-c-d");
  EXPECT_EQ(nest_repository("tool", 1), "tool");
}

TEST(RegistryHost, AcceptsSchemeAndTrailingSlash) {
  auto h = RegistryHost::parse("https://registry.example.com:5000/");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->host, "registry.example.com:5000");
  EXPECT_EQ(h->scheme, "https");
  auto plain = RegistryHost::parse("http://127.0.0.1:5000");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->scheme, "http");
  EXPECT_FALSE(RegistryHost::parse("registry.example.com/Path").ok());
  EXPECT_FALSE(RegistryHost::parse("").ok());
  EXPECT_FALSE(RegistryHost::parse("host:port").ok());
}

TEST(Loopback, RecognisesLoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1:5000"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("localhost:80"));
  EXPECT_TRUE(is_loopback_host("[::1]:5000"));
  EXPECT_FALSE(is_loopback_host("registry.example.com"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("[::2]:5000"));
}

TEST(WwwAuthenticate, ParsesBearerWithQuotedParams) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), "https://auth.example.com/token");
  EXPECT_EQ(c[0].param("service"), "registry.example.com");
  EXPECT_EQ(c[0].param("scope"), "repository:a/b:pull,push");
}

TEST(WwwAuthenticate, ParsesSeveralChallengesAndBareValues) {
  auto c = parse_www_authenticate(R"(Basic realm="Registry Realm", Bearer realm=https://t.example/token,service=x)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].param("realm"), "Registry Realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].param("realm"), "https://t.example/token");
  EXPECT_EQ(c[1].param("service"), "x");
  EXPECT_TRUE(parse_www_authenticate("").empty());
  auto escaped = parse_www_authenticate(R"(Basic realm="a \"quoted\" realm")");
  ASSERT_EQ(escaped.size(), 1u);
  EXPECT_EQ(escaped[0].param("realm"), "a \"quoted\" realm");
}

TEST(AuthFile, LooksUpByHostSchemeAndPathPrefix) {
  std::string json = R"({"auths":{
    "quay.io": {"auth": ")" +
                     base64_encode("bot:secret") + R"("},
    "quay.io/openshift-release-dev": {"auth": ")" +
                     base64_encode("release:r3l") + R"("},
    "https://registry.example.com:5000/v2/": {"username": "u", "password": "p:with:colons"},
    "mirror.example.com": {"email": "only@example.com"}
  }})";
  auto f = AuthFile::parse(json, "ps.json");
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto generic = f->lookup("quay.io", "someone/else");
  ASSERT_TRUE(generic);
  EXPECT_EQ(generic->username, "bot");
  auto scoped = f->lookup("quay.io", "openshift-release-dev/ocp-release");
  ASSERT_TRUE(scoped);
  EXPECT_EQ(scoped->username, "release");
  EXPECT_EQ(scoped->password, "r3l");
  auto other = f->lookup("registry.example.com:5000", "x");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->password, "p:with:colons");
  EXPECT_FALSE(f->lookup("registry.example.com", "x"));  // port matters
  EXPECT_FALSE(f->lookup("mirror.example.com", "x"));    // no credentials in entry
  EXPECT_FALSE(f->lookup("quay.io.evil.com", "x"));
}

TEST(AuthFile, ErrorsNameFileAndField) {
  auto bad_json = AuthFile::parse("{not json", "/tmp/ps.json");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.error().message.find("/tmp/ps.json"), std::string::npos);
  EXPECT_NE(bad_json.error().message.find("not valid JSON"), std::string::npos);

  auto no_auths = AuthFile::parse(R"({"other":{}})", "ps.json");
  ASSERT_FALSE(no_auths.ok());
  EXPECT_NE(no_auths.error().message.find("\"auths\""), std::string::npos);
  // A Docker config whose credentials live in a helper says so, rather than "no auths".
  auto helper = AuthFile::parse(R"({"credHelpers":{"quay.io":"ecr-login"}})", "config.json");
  ASSERT_FALSE(helper.ok());
  EXPECT_NE(helper.error().message.find("credential helper"), std::string::npos) << helper.error().message;

  auto bad_b64 = AuthFile::parse(R"({"auths":{"quay.io":{"auth":"***"}}})", "ps.json");
  ASSERT_FALSE(bad_b64.ok());
  EXPECT_NE(bad_b64.error().message.find("auths.\"quay.io\""), std::string::npos);

  auto no_colon = AuthFile::parse(R"({"auths":{"quay.io":{"auth":")" + base64_encode("nocolon") + R"("}}})", "ps.json");
  ASSERT_FALSE(no_colon.ok());
  EXPECT_NE(no_colon.error().message.find("user:password"), std::string::npos);
  // The secret itself never appears in the message.
  EXPECT_EQ(no_colon.error().message.find("nocolon"), std::string::npos);

  auto missing = AuthFile::load("/nonexistent/pull-secret.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/pull-secret.json"), std::string::npos);
}

TEST(Base64, RoundTripsAndToleratesMissingPadding) {
  for (std::string s : {"", "a", "ab", "abc", "user:p@ss:word"}) {
    auto decoded = base64_decode(base64_encode(s));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, s);
  }
  EXPECT_EQ(*base64_decode("YWI"), "ab");
  EXPECT_FALSE(base64_decode("!!!!"));
}

TEST(Digest, HashesAndValidates) {
  EXPECT_EQ(sha256_digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("hello ");
  h.update("world");
  EXPECT_EQ(h.finish(), sha256_digest("hello world"));
  EXPECT_TRUE(is_sha256_digest(kDigest));
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(63, 'a')));
}

TEST(Url, ResolvesLocations) {
  EXPECT_EQ(*resolve_url("https://r.example/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u1?_state=x"),
            "https://r.example/v2/a/blobs/uploads/u1?_state=x");
  EXPECT_EQ(*resolve_url("https://r.example/v2/a/blobs/uploads/", "https://up.example:8443/u1"),
            "https://up.example:8443/u1");
  EXPECT_EQ(*resolve_url("http://127.0.0.1:5000/v2/a/blobs/uploads/", "u2"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u2");
}

TEST(Url, AddsDigestToExistingQuery) {
  auto with = add_query_param("https://r.example/up/u1?_state=abc", "digest", kDigest);
  ASSERT_TRUE(with.ok());
  EXPECT_NE(with->find("?_state=abc&digest=sha256"), std::string::npos) << *with;
  auto without = add_query_param("https://r.example/up/u1", "digest", kDigest);
  EXPECT_NE(without->find("/up/u1?digest=sha256"), std::string::npos) << *without;
}

TEST(Url, OriginsAndLogging) {
  EXPECT_EQ(url_origin("https://Quay.IO/v2/"), "quay.io:443");
  EXPECT_EQ(url_origin("http://127.0.0.1:5000/x"), "127.0.0.1:5000");
  EXPECT_NE(url_origin("https://quay.io/"), url_origin("https://cdn.quay.io/"));
  EXPECT_EQ(url_for_log("https://cdn/x?X-Amz-Signature=secret"), "https://cdn/x?...");
}

TEST(ErrorBody, DescribesRegistryErrors) {
  EXPECT_EQ(describe_error_body(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})"),
            "MANIFEST_UNKNOWN: manifest unknown");
  EXPECT_EQ(describe_error_body(R"({"errors":[{"code":"A","message":"x"},{"code":"B"}]})"), "A: x; B");
  EXPECT_EQ(describe_error_body("<html>\n<body>Bad Gateway</body>"), "<html>");
  EXPECT_EQ(describe_error_body(""), "");
}

TEST(ErrorBody, GivesTheFirstRegistryErrorCode) {
  EXPECT_EQ(
      first_error_code(
          R"({"errors":[{"message":"no code"},{"code":"NAME_UNKNOWN","message":"repository name not known to registry"},{"code":"B"}]})"),
      "NAME_UNKNOWN");
  EXPECT_EQ(first_error_code(R"({"errors":[]})"), "");
  EXPECT_EQ(first_error_code("404 page not found"), "");
}

TEST(RetryAfter, ParsesSecondsAndDates) {
  EXPECT_EQ(parse_retry_after("3"), std::chrono::milliseconds(3000));
  EXPECT_FALSE(parse_retry_after(""));
  EXPECT_FALSE(parse_retry_after("soon"));
  auto past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
  ASSERT_TRUE(past);
  EXPECT_EQ(past->count(), 0);
}

}  // namespace
}  // namespace fastsync
