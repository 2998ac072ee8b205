#include "s3rdmafs/config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "s3rdmafs/common/endpoint_list.h"
#include "s3rdmafs/common/size_parse.h"

using namespace s3rdmafs;

TEST(Config, DefaultsPlusBucketValidate) {
  config::Config c;
  c.s3.bucket = "b";
  EXPECT_TRUE(config::Validate(c));
}

TEST(Config, ParsesTypedValues) {
  auto c = config::ParseToml(R"(
[s3]
endpoint = "https://s3.example:8443"
bucket = "data"
addressing = "virtual"
max_retries = 7
retry_base_delay = "250ms"
[cache]
size = "2GiB"
block_size = 2097152
[metadata]
attr_ttl = 30
[fuse]
file_mode = "0640"
)",
                             "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->s3.endpoint, "https://s3.example:8443");
  EXPECT_EQ(c->s3.addressing, config::Addressing::kVirtual);
  EXPECT_EQ(c->s3.max_retries, 7u);
  EXPECT_EQ(c->s3.retry_base_delay_ms, 250u);
  EXPECT_EQ(c->cache.size, 2ull << 30);
  EXPECT_EQ(c->cache.block_size, 2u << 20);
  EXPECT_EQ(c->metadata.attr_ttl_ms, 30000u);
  EXPECT_EQ(c->fuse.file_mode, 0640u);
}

TEST(Config, ReportsEveryErrorWithItsKey) {
  auto c = config::ParseToml(R"(
[s3]
endpont = "x"
max_retries = "many"
[cache]
size = "12 parsecs"
[nonsense]
a = 1
)",
                             "bad.toml");
  ASSERT_FALSE(c);
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("4 error(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("s3.endpont: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("s3.max_retries"), std::string::npos) << m;
  EXPECT_NE(m.find("cache.size"), std::string::npos) << m;
  EXPECT_NE(m.find("nonsense.a: unknown key"), std::string::npos) << m;
}

TEST(Config, SyntaxErrorNamesLine) {
  auto c = config::ParseToml("[s3]\nendpoint = \"unterminated\n", "syn.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("syn.toml:2"), std::string::npos) << c.error().message;
}

TEST(Config, ValidateCollectsCrossFieldProblems) {
  config::Config c;
  c.s3.endpoint = "ftp://x";
  c.cache.block_size = 3000;
  c.s3.access_key = "only-half";
  c.rdma.port = 0;
  auto v = config::Validate(c);
  ASSERT_FALSE(v);
  const std::string& m = v.error().message;
  EXPECT_NE(m.find("rdma.port: must be a device port from 1 to 255, got 0"), std::string::npos)
      << m;
  EXPECT_NE(m.find("s3.endpoint"), std::string::npos);
  EXPECT_NE(m.find("s3.bucket"), std::string::npos);
  EXPECT_NE(m.find("cache.block_size"), std::string::npos);
  EXPECT_NE(m.find("s3.access_key and s3.secret_key"), std::string::npos);
}

// Several endpoints (gateways): ';' in -o and fstab, commas or spaces in a file.
TEST(Config, EndpointListsAreCheckedOneByOne) {
  EXPECT_EQ(SplitEndpointList("http://a:1;http://b:2, http://c:3 ;;"),
            (std::vector<std::string>{"http://a:1", "http://b:2", "http://c:3"}));
  config::Config c;
  c.s3.bucket = "b";
  c.s3.endpoint = "http://a:1;http://b:2";
  EXPECT_TRUE(config::Validate(c));
  c.s3.endpoint = "http://a:1;ftp://b";
  auto v = config::Validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("got 'ftp://b' in 'http://a:1;ftp://b'"), std::string::npos)
      << v.error().message;
  c.s3.endpoint = " ; ";
  EXPECT_FALSE(config::Validate(c));
}

TEST(Config, RdmaEndpointsAreOneOrOnePerS3Endpoint) {
  config::Config c;
  c.s3.bucket = "b";
  c.s3.endpoint = "http://a:1;http://b:2";
  c.rdma.endpoint = "10.0.0.1:7471";  // one listener, through the first endpoint
  EXPECT_TRUE(config::Validate(c));
  c.rdma.endpoint = "10.0.0.1:7471;10.0.0.2:7471";
  EXPECT_TRUE(config::Validate(c));
  c.rdma.endpoint = "10.0.0.1:7471;10.0.0.2";
  auto v = config::Validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("got '10.0.0.2' in '10.0.0.1:7471;10.0.0.2'"), std::string::npos)
      << v.error().message;
  c.s3.endpoint = "http://a:1;http://b:2;http://c:3";
  c.rdma.endpoint = "10.0.0.1:7471;10.0.0.2:7471";
  v = config::Validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("2 RDMA listeners for 3 s3.endpoint URLs"), std::string::npos)
      << v.error().message;
}

TEST(Config, OverridesUseTheSameParsers) {
  config::Config c;
  ASSERT_TRUE(config::ApplyOverride(&c, "cache.size=64M"));
  EXPECT_EQ(c.cache.size, 64ull << 20);
  ASSERT_TRUE(config::ApplyOverride(&c, "fuse.direct_io=true"));
  EXPECT_TRUE(c.fuse.direct_io);
  EXPECT_FALSE(config::ApplyOverride(&c, "cache.sise=1"));
  EXPECT_FALSE(config::ApplyOverride(&c, "cache.size"));
  EXPECT_FALSE(config::ApplyOverride(&c, "fuse.direct_io=perhaps"));
}

TEST(Config, PrintMasksSecretsAndRoundTrips) {
  config::Config c;
  c.s3.bucket = "b";
  c.s3.access_key = "AKIDVISIBLE";
  c.s3.secret_key = "very-secret";
  std::string printed = config::Print(c);
  EXPECT_EQ(printed.find("very-secret"), std::string::npos);
  EXPECT_EQ(printed.find("AKIDVISIBLE"), std::string::npos);
  EXPECT_NE(printed.find("secret_key = \"********\""), std::string::npos);
  c.s3.secret_key = c.s3.access_key = "";
  auto again = config::ParseToml(config::Print(c), "printed");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(config::Print(*again), config::Print(c));
}

TEST(SizeParse, UnitsAndErrors) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("1KiB"), 1024u);
  EXPECT_EQ(*ParseSize("3g"), 3ull << 30);
  EXPECT_FALSE(ParseSize("-1"));
  EXPECT_FALSE(ParseSize("1X"));
  EXPECT_FALSE(ParseSize("99999999999T"));
  EXPECT_EQ(*ParseDurationMs("2s"), 2000u);
  EXPECT_EQ(*ParseDurationMs("1m"), 60000u);
  EXPECT_FALSE(ParseDurationMs("soon"));
}

TEST(Config, EveryKeyIsDocumentedInTheManPage) {
  std::ifstream in(std::string(S3RDMAFS_SOURCE_DIR) + "/man/s3rdmafs.8");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::string man = text.str();
  for (const std::string& key : config::AllKeys()) {
    std::string section = key.substr(0, key.find('.'));
    std::string name = key.substr(key.find('.') + 1);
    EXPECT_NE(man.find("[" + section + "]"), std::string::npos) << section;
    EXPECT_NE(man.find(name), std::string::npos) << key << " is missing from man/s3rdmafs.8";
  }
}

TEST(Config, EveryKeyIsInTheGeneratedTomlManPage) {
  std::string page = config::ConfigReferenceManPage("test");
  EXPECT_NE(page.find(".TH S3RDMAFS.TOML 5"), std::string::npos);
  for (const std::string& key : config::AllKeys()) {
    std::string section = key.substr(0, key.find('.'));
    std::string name = key.substr(key.find('.') + 1);
    EXPECT_NE(page.find(".SH [" + section + "]"), std::string::npos) << section;
    // Each key: its name, its default and its type.
    EXPECT_NE(page.find("\\fB" + name + "\\fR = "), std::string::npos)
        << key << " is missing from s3rdmafs.toml(5)";
  }
  EXPECT_NE(page.find("part_size\\fR = \"8MiB\" (size)"), std::string::npos);
  EXPECT_NE(page.find("Rule: 5MiB..5GiB"), std::string::npos);
}

// Rails: several addresses of one RDMA server ('|'), and several connections
// to each; each address is checked, and the count has a range.
TEST(Config, RdmaRailsAreCheckedOneByOne) {
  EXPECT_EQ(SplitRails("10.0.0.1:7471|10.0.1.1:7471"),
            (std::vector<std::string>{"10.0.0.1:7471", "10.0.1.1:7471"}));
  config::Config c;
  c.s3.bucket = "b";
  c.s3.endpoint = "http://a:1;http://b:2";
  c.rdma.endpoint = "10.0.0.1:7471|10.0.1.1:7471;10.0.0.2:7471";
  c.rdma.connections = 4;
  EXPECT_TRUE(config::Validate(c));
  c.rdma.endpoint = "10.0.0.1:7471|nope;10.0.0.2:7471";
  auto v = config::Validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("got 'nope' in"), std::string::npos) << v.error().message;
  c.rdma.endpoint = "10.0.0.1:7471";
  c.rdma.connections = 17;
  v = config::Validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("rdma.connections: must be 1 to 16"), std::string::npos)
      << v.error().message;
}
