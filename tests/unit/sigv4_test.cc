// SigV4 against AWS's published examples (hand-checkable), plus the
// canonicalisation rules both our client and our server rely on.
#include "s3rdmafs/s3/sigv4.h"

#include <gtest/gtest.h>

namespace s3 = s3rdmafs::s3;

namespace {

std::string AuthorizationFor(const s3::Credentials& c, const std::string& region,
                             const std::string& uri, const std::string& query,
                             s3::HeaderList headers, std::time_t t) {
  s3::SignRequest(c, region, "GET", uri, query, s3::kEmptySha256, t, &headers);
  for (auto& [k, v] : headers)
    if (k == "Authorization") return v;
  return "";
}

// 2013-05-24T00:00:00Z, the date of the S3 documentation examples.
constexpr std::time_t kDocDate = 1369353600;

}  // namespace

TEST(SigV4, AwsTestSuiteGetVanilla) {
  // aws-sig-v4-test-suite/get-vanilla (service "service", so built by hand).
  s3::HeaderList h = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  s3::CanonicalInput in{"GET", "/", "", &h, "host;x-amz-date", s3::kEmptySha256};
  std::string canonical = s3::CanonicalRequest(in);
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string scope = s3::Scope("20150830T123600Z", "us-east-1", "service");
  std::string sts = s3::StringToSign("20150830T123600Z", scope, canonical);
  EXPECT_EQ(s3::SignatureHex("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z",
                             "us-east-1", "service", sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, S3DocsGetObjectWithRange) {
  s3::Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  std::string auth = AuthorizationFor(
      c, "us-east-1", "/test.txt", "",
      {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}}, kDocDate);
  EXPECT_EQ(auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3DocsListObjectsQueryIsSortedAndEncoded) {
  s3::Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  std::string auth = AuthorizationFor(c, "us-east-1", "/", "prefix=J&max-keys=2",
                                      {{"Host", "examplebucket.s3.amazonaws.com"}}, kDocDate);
  EXPECT_NE(auth.find("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            std::string::npos)
      << auth;
}

TEST(SigV4, UriEncodeFollowsRfc3986) {
  EXPECT_EQ(s3::UriEncode("a b/c~d_e.f-g+h*", false), "a%20b/c~d_e.f-g%2Bh%2A");
  EXPECT_EQ(s3::UriEncode("a/b", true), "a%2Fb");
  EXPECT_EQ(s3::UriEncode("\xc3\xa9", false), "%C3%A9");
  std::string out;
  EXPECT_TRUE(s3::UriDecode("a%20b%2fc", &out));
  EXPECT_EQ(out, "a b/c");
  EXPECT_FALSE(s3::UriDecode("bad%2", &out));
  EXPECT_FALSE(s3::UriDecode("bad%zz", &out));
  EXPECT_TRUE(s3::UriDecode("a+b", &out, true));
  EXPECT_EQ(out, "a b");
}

TEST(SigV4, CanonicalQueryStringSortsAndReencodes) {
  EXPECT_EQ(s3::CanonicalQueryString("prefix=a%2Fb&list-type=2&delimiter=/"),
            "delimiter=%2F&list-type=2&prefix=a%2Fb");
  EXPECT_EQ(s3::CanonicalQueryString("location"), "location=");
  EXPECT_EQ(s3::CanonicalQueryString(""), "");
}

TEST(SigV4, AnonymousCredentialsLeaveRequestUnsigned) {
  s3::HeaderList h = {{"Host", "x"}};
  s3::SignRequest({}, "us-east-1", "GET", "/", "", s3::kEmptySha256, kDocDate, &h);
  EXPECT_EQ(h.size(), 1u);
}

TEST(SigV4, SessionTokenIsSigned) {
  s3::HeaderList h = {{"Host", "x"}};
  s3::SignRequest({"AK", "SK", "TOKEN"}, "us-east-1", "GET", "/", "", s3::kEmptySha256, kDocDate,
                  &h);
  bool found = false;
  for (auto& [k, v] : h) {
    if (k == "x-amz-security-token") found = v == "TOKEN";
    if (k == "Authorization") {
      EXPECT_NE(v.find("x-amz-security-token"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
}
