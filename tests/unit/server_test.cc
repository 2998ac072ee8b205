// The reference server's parsers and its directory backend, without sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "auth.h"
#include "aws_chunked.h"
#include "checksums.h"
#include "local_backend.h"
#include "multipart.h"
#include "s3_handler.h"
#include "s3rdmafs/s3/sigv4.h"
#include "server_config.h"
#include "upstream.h"

using namespace s3rdma::server;
namespace stdfs = std::filesystem;

TEST(ServerRange, Forms) {
  uint64_t a, b;
  bool bad;
  ASSERT_TRUE(ParseRange("bytes=0-9", 100, &a, &b, &bad));
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 9u);
  ASSERT_TRUE(ParseRange("bytes=90-", 100, &a, &b, &bad));
  EXPECT_EQ(a, 90u);
  EXPECT_EQ(b, 99u);
  ASSERT_TRUE(ParseRange("bytes=-10", 100, &a, &b, &bad));
  EXPECT_EQ(a, 90u);
  EXPECT_EQ(b, 99u);
  ASSERT_TRUE(ParseRange("bytes=-500", 100, &a, &b, &bad));
  EXPECT_EQ(a, 0u);
  ASSERT_TRUE(ParseRange("bytes=50-5000", 100, &a, &b, &bad));
  EXPECT_EQ(b, 99u);
  ASSERT_TRUE(ParseRange("bytes=100-200", 100, &a, &b, &bad));
  EXPECT_TRUE(bad) << "start past the end: 416";
  ASSERT_TRUE(ParseRange("bytes=0-0", 0, &a, &b, &bad));
  EXPECT_TRUE(bad) << "any range of an empty object: 416";
  EXPECT_FALSE(ParseRange("bytes=5-2", 100, &a, &b, &bad)) << "invalid: whole object";
  EXPECT_FALSE(ParseRange("bytes=0-1,5-6", 100, &a, &b, &bad)) << "multi-range: whole object";
  EXPECT_FALSE(ParseRange("items=0-1", 100, &a, &b, &bad));
  EXPECT_FALSE(ParseRange("bytes=x-1", 100, &a, &b, &bad));
}

TEST(ServerAuth, AcceptsOurSignerAndRejectsTampering) {
  Request req;
  req.method = "GET";
  req.path = "/bkt/some%20key";
  req.raw_query = "";
  s3rdmafs::s3::HeaderList h = {{"Host", "127.0.0.1:9000"}, {"Range", "bytes=0-9"}};
  std::time_t now = std::time(nullptr);
  s3rdmafs::s3::SignRequest({"AK", "SK", ""}, "us-east-1", "GET", req.path, "",
                            s3rdmafs::s3::kEmptySha256, now, &h);
  req.headers.assign(h.begin(), h.end());
  std::map<std::string, std::string> keys = {{"AK", "SK"}};
  EXPECT_TRUE(Authenticate(req, keys, "us-east-1", false, now).ok);
  EXPECT_EQ(Authenticate(req, keys, "eu-west-1", false, now).error_code,
            "AuthorizationHeaderMalformed");
  EXPECT_EQ(Authenticate(req, keys, "us-east-1", false, now + 3600).error_code,
            "RequestTimeTooSkewed");
  EXPECT_EQ(Authenticate(req, {{"AK", "other"}}, "us-east-1", false, now).error_code,
            "SignatureDoesNotMatch");
  EXPECT_EQ(Authenticate(req, {{"BK", "SK"}}, "us-east-1", false, now).error_code,
            "InvalidAccessKeyId");
  Request tampered = req;
  for (auto& [k, v] : tampered.headers)
    if (k == "Range") v = "bytes=0-99";
  EXPECT_EQ(Authenticate(tampered, keys, "us-east-1", false, now).error_code,
            "SignatureDoesNotMatch");
  Request anon;
  anon.method = "GET";
  anon.path = "/";
  EXPECT_FALSE(Authenticate(anon, keys, "us-east-1", false, now).ok);
  EXPECT_TRUE(Authenticate(anon, keys, "us-east-1", true, now).ok);
}

TEST(ServerBackend, RejectsKeysThatEscapeTheBucket) {
  EXPECT_FALSE(LocalBackend::ValidKey("../etc/passwd"));
  EXPECT_FALSE(LocalBackend::ValidKey("a/../../b"));
  EXPECT_FALSE(LocalBackend::ValidKey("/abs"));
  EXPECT_FALSE(LocalBackend::ValidKey("a//b"));
  EXPECT_FALSE(LocalBackend::ValidKey("a/.s3rdma-dir-marker"));
  EXPECT_TRUE(LocalBackend::ValidKey("a/b c/d.txt"));
  EXPECT_TRUE(LocalBackend::ValidKey("dir/"));
  EXPECT_FALSE(LocalBackend::ValidBucketName("."));
  EXPECT_FALSE(LocalBackend::ValidBucketName("a/b"));
}

// Random trees listed with random prefixes, delimiters and page sizes must
// equal the S3 semantics computed from a sorted set of keys.
TEST(ServerBackend, ListingMatchesTheModel) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  stdfs::path root = stdfs::temp_directory_path() / ("s3rdma-list-" + std::to_string(getpid()));
  stdfs::remove_all(root);
  stdfs::create_directories(root / "bkt");
  const char* names[] = {"a", "a-b", "a.b", "ab", "b", "z", "a0"};
  std::set<std::string> model;
  for (int i = 0; i < 120; ++i) {
    std::string key;
    int depth = 1 + rng() % 3;
    for (int d = 0; d < depth; ++d) key += std::string(d ? "/" : "") + names[rng() % 7];
    bool clash = false;  // a file cannot also be a directory on disk
    for (auto& k : model)
      if (k.rfind(key + "/", 0) == 0 || key.rfind(k + "/", 0) == 0) clash = true;
    if (clash || model.count(key)) continue;
    stdfs::create_directories((root / "bkt" / key).parent_path());
    std::ofstream(root / "bkt" / key) << key;
    model.insert(key);
  }
  LocalBackend backend(root.string());
  for (int trial = 0; trial < 200; ++trial) {
    ListQuery q;
    if (rng() % 4) {
      auto it = model.begin();
      std::advance(it, rng() % model.size());
      q.prefix = it->substr(0, rng() % (it->size() + 1));
    }
    if (rng() % 2) q.delimiter = "/";
    uint32_t page = 1 + rng() % 9;
    // Expected: keys with the prefix; with a delimiter, rolled up to common prefixes.
    std::vector<std::pair<std::string, bool>> expected;
    for (auto& k : model) {
      if (k.rfind(q.prefix, 0) != 0) continue;
      size_t d = q.delimiter.empty() ? std::string::npos : k.find('/', q.prefix.size());
      if (d == std::string::npos)
        expected.emplace_back(k, false);
      else if (expected.empty() || expected.back().first != k.substr(0, d + 1))
        expected.emplace_back(k.substr(0, d + 1), true);
    }
    std::sort(expected.begin(), expected.end());
    expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
    std::vector<std::pair<std::string, bool>> got;
    q.max_keys = page;
    for (int pages = 0; pages < 200; ++pages) {
      auto r = backend.List("bkt", q);
      ASSERT_TRUE(r);
      ASSERT_LE(r->entries.size(), page);
      for (auto& e : r->entries) got.emplace_back(e.key, e.is_prefix);
      if (!r->truncated) break;
      q.start_after = r->entries.back().key;
    }
    ASSERT_EQ(got, expected) << "prefix '" << q.prefix << "' delimiter '" << q.delimiter
                             << "' page " << page;
  }
  stdfs::remove_all(root);
}

namespace {

// Captures what the handler answers; requests are built and signed in-process.
class RecordingExchange : public Exchange {
 public:
  explicit RecordingExchange(Request r) : req_(std::move(r)) {}
  const Request& request() const override { return req_; }
  bool ReadBody(const std::function<bool(const char*, size_t)>&) override { return true; }
  long ReadSome(char*, size_t) override { return 0; }
  void BeginBody(int status, const Headers& headers, uint64_t) override {
    status_ = status;
    headers_ = headers;
  }
  bool SendBodyPart(const char* d, size_t n) override {
    body_.append(d, n);
    return true;
  }
  void Abandon() override {}
  void Send(int status, const Headers& headers, std::string_view body) override {
    status_ = status;
    headers_ = headers;
    body_ = body;
  }
  void SendFile(int status, const Headers& headers, int, uint64_t, uint64_t length) override {
    status_ = status;
    headers_ = headers;
    body_ = "<file " + std::to_string(length) + ">";
  }
  void SendHeadersOnly(int status, const Headers& headers, uint64_t) override {
    status_ = status;
    headers_ = headers;
  }
  std::string Header(const std::string& name) const {
    for (auto& [k, v] : headers_)
      if (k == name) return v;
    return "";
  }
  int status_ = 0;
  Headers headers_;
  std::string body_;

 private:
  Request req_;
};

Request SignedGet(const std::string& path, s3rdmafs::s3::HeaderList extra, bool sign_token = true) {
  Request req;
  req.method = "GET";
  req.path = path;
  s3rdmafs::s3::HeaderList h = {{"Host", "127.0.0.1:9000"}};
  s3rdmafs::s3::HeaderList unsigned_headers;
  for (auto& e : extra) (sign_token ? h : unsigned_headers).push_back(e);
  s3rdmafs::s3::SignRequest({"AK", "SK", ""}, "us-east-1", "GET", path, "",
                            s3rdmafs::s3::kEmptySha256, std::time(nullptr), &h);
  for (auto& e : unsigned_headers) h.push_back(e);
  req.headers.assign(h.begin(), h.end());
  return req;
}

}  // namespace

TEST(ServerRdmaToken, MalformedIs400AndUnservableIsDeclinedWith501) {
  stdfs::path root = stdfs::temp_directory_path() / ("s3rdma-tok-" + std::to_string(getpid()));
  stdfs::create_directories(root / "bkt");
  std::ofstream(root / "bkt" / "obj") << "data";
  ServerConfig config;
  config.root = root.string();
  config.keys = {{"AK", "SK"}};
  LocalBackend backend(root.string());
  S3Handler handler(config, &backend);

  RecordingExchange malformed(SignedGet("/bkt/obj", {{"x-amz-rdma-token", "rc1:zz"}}));
  handler.Handle(malformed);
  EXPECT_EQ(malformed.status_, 400);
  EXPECT_NE(malformed.body_.find("InvalidRDMAToken"), std::string::npos);

  const std::string dc =
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a";
  for (const std::string& token :
       {dc, dc + ":00007f0000200000:0000000000100000",
        std::string("rc1:1122334455667788:00007fffdeadb000:00400000:0000cafe")}) {
    RecordingExchange ex(
        SignedGet("/bkt/obj", {{"x-amz-rdma-token", token}, {"Range", "bytes=0-3"}}));
    handler.Handle(ex);
    EXPECT_EQ(ex.status_, 501) << token;
    EXPECT_EQ(ex.Header("x-amz-rdma-reply"), "501") << token;
  }

  RecordingExchange unsigned_token(SignedGet("/bkt/obj", {{"x-amz-rdma-token", dc}}, false));
  handler.Handle(unsigned_token);
  EXPECT_EQ(unsigned_token.status_, 403) << "the token must be covered by the signature";

  RecordingExchange plain(SignedGet("/bkt/obj", {{"Range", "bytes=1-2"}}));
  handler.Handle(plain);
  EXPECT_EQ(plain.status_, 206);
  EXPECT_EQ(plain.Header("Content-Range"), "bytes 1-2/4");
  stdfs::remove_all(root);
}

namespace {

// Fills a part or object with `data` through the backend's streaming interface.
std::function<bool(const LocalBackend::Writer&)> Body(const std::string& data) {
  return [data](const LocalBackend::Writer& w) { return w(data.data(), data.size()); };
}
PartVerifier NoCheck() {
  return [](const std::string&, const std::string&) -> s3rdmafs::Result<PartChecksum> {
    return PartChecksum{};
  };
}
std::string FileText(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(ServerMultipart, LifecycleRulesAndAtomicPublish) {
  stdfs::path root = stdfs::temp_directory_path() / ("s3rdma-mpu-" + std::to_string(getpid()));
  stdfs::create_directories(root / "bkt");
  LocalBackend backend(root.string());
  if (!backend.ProbeMetadataSupport().empty()) GTEST_SKIP() << "no user xattrs under /tmp here";
  MultipartUploads uploads(&backend, root.string());
  const std::string big(MultipartUploads::kMinPartSize, 'a'), tail = "tail";
  auto id = uploads.Create("bkt", "obj", {{"x-amz-meta-mode", "33188"}});
  ASSERT_TRUE(id);
  EXPECT_FALSE(uploads.UploadPart("bkt", "other", *id, 1, Body(big), NoCheck()))
      << "an upload belongs to its key";
  auto p1 = uploads.UploadPart("bkt", "obj", *id, 1, Body(big), NoCheck());
  auto p2 = uploads.UploadPart("bkt", "obj", *id, 2, Body(tail), NoCheck());
  ASSERT_TRUE(p1 && p2);
  EXPECT_FALSE(stdfs::exists(root / "bkt" / "obj")) << "nothing visible before Complete";

  auto order = uploads.Complete("bkt", "obj", *id, {{2, p2->etag}, {1, p1->etag}});
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().s3_code, "InvalidPartOrder");
  auto wrong = uploads.Complete("bkt", "obj", *id, {{1, "\"bad\""}, {2, p2->etag}});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().s3_code, "InvalidPart");
  auto small = uploads.Complete("bkt", "obj", *id, {{2, p2->etag}, {3, p2->etag}});
  ASSERT_FALSE(small);

  auto done = uploads.Complete("bkt", "obj", *id, {{1, p1->etag}, {2, p2->etag}});
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_EQ(FileText(root / "bkt" / "obj"), big + tail);
  EXPECT_NE(done->etag.find("-2\""), std::string::npos) << "the multipart ETag form";
  auto stat = backend.Stat("bkt", "obj");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->user, (UserMeta{{"x-amz-meta-mode", "33188"}}));
  auto again = uploads.Complete("bkt", "obj", *id, {{1, p1->etag}, {2, p2->etag}});
  ASSERT_TRUE(again) << "a retried Complete (lost reply) is answered as the first";
  EXPECT_EQ(again->etag, done->etag);
  auto opened = backend.Open("bkt", "obj");
  ASSERT_TRUE(opened);
  auto parts = LocalBackend::Parts(opened->first, opened->second.size);
  close(opened->first);
  EXPECT_EQ(parts, (std::vector<LocalBackend::PartRecord>{{big.size(), ""}, {tail.size(), ""}}));
  EXPECT_FALSE(uploads.Complete("bkt", "other", *id, {{1, p1->etag}, {2, p2->etag}}))
      << "the record answers for its own key only";

  // UploadPartCopy of a range, and CopyObject with both metadata directives.
  auto id2 = uploads.Create("bkt", "copy", {});
  auto src = backend.Open("bkt", "obj");
  ASSERT_TRUE(id2 && src);
  auto cp = uploads.CopyPart("bkt", "copy", *id2, 1, src->first, big.size() - 2, 6);
  close(src->first);
  ASSERT_TRUE(cp);
  ASSERT_TRUE(uploads.Complete("bkt", "copy", *id2, {{1, cp->etag}}));
  EXPECT_EQ(FileText(root / "bkt" / "copy"), "aatail");
  auto same = [](const ObjectMeta& m) -> s3rdmafs::Result<UserMeta> { return m.user; };
  auto kept = backend.Copy("bkt", "obj", same, "bkt", "kept");
  ASSERT_TRUE(kept);
  EXPECT_EQ(backend.Stat("bkt", "kept")->user, stat->user);
  UserMeta replace{{"x-amz-meta-mode", "33261"}};
  auto replacing = [&](const ObjectMeta&) -> s3rdmafs::Result<UserMeta> { return replace; };
  ASSERT_TRUE(backend.Copy("bkt", "obj", replacing, "bkt", "obj"));
  EXPECT_EQ(backend.Stat("bkt", "obj")->user, replace);
  EXPECT_EQ(FileText(root / "bkt" / "obj"), big + tail);
  auto refuse = [](const ObjectMeta&) -> s3rdmafs::Result<UserMeta> {
    return s3rdmafs::MakeS3Error(412, "PreconditionFailed", "no");
  };
  auto stale = backend.Copy("bkt", "obj", refuse, "bkt", "x");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().s3_code, "PreconditionFailed");
  EXPECT_FALSE(backend.Stat("bkt", "x")) << "a refused copy writes nothing";

  auto id3 = uploads.Create("bkt", "aborted", {});
  ASSERT_TRUE(uploads.UploadPart("bkt", "aborted", *id3, 1, Body("x"), NoCheck()));
  ASSERT_TRUE(uploads.Abort("bkt", "aborted", *id3));
  EXPECT_FALSE(uploads.ListParts("bkt", "aborted", *id3));
  for (const auto& e : stdfs::directory_iterator(root / ".s3rdma-multipart"))
    EXPECT_EQ(e.path().extension(), ".completed")
        << e.path() << ": nothing but the records of completed uploads is left behind";
  stdfs::remove_all(root);
}

namespace {
std::string SumOf(const std::string& algorithm, const std::string& data) {
  auto sum = Checksum::Named(algorithm);
  sum->Update(data.data(), data.size());
  return sum->Base64();
}
}  // namespace

TEST(ServerChecksums, PartCrcsCombineIntoTheCrcOfTheWholeObject) {
  std::mt19937 rng(7);
  std::string data(3 << 20, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (const char* algorithm : {"crc32", "crc32c", "crc64nvme"}) {
    for (int trial = 0; trial < 4; ++trial) {
      // Cut points anywhere, including parts of one byte.
      std::vector<size_t> cuts{0, data.size()};
      for (int i = 0; i < 1 + trial * 3; ++i) cuts.push_back(rng() % data.size());
      if (trial == 3) cuts.push_back(1);
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      std::vector<std::pair<std::string, uint64_t>> parts;
      for (size_t i = 0; i + 1 < cuts.size(); ++i)
        parts.emplace_back(SumOf(algorithm, data.substr(cuts[i], cuts[i + 1] - cuts[i])),
                           cuts[i + 1] - cuts[i]);
      auto combined = CombinePartChecksums({algorithm, true}, parts);
      ASSERT_TRUE(combined) << combined.error().ToString();
      EXPECT_EQ(*combined, SumOf(algorithm, data)) << algorithm << ", " << parts.size() << " parts";
    }
  }
  auto bad = CombinePartChecksums({"crc32", true}, {{"AAAAAAAAAAA=", 1}});
  ASSERT_FALSE(bad) << "an 8-byte value is no CRC32";
  EXPECT_EQ(bad.error().s3_code, "InvalidPart");
  EXPECT_NE(bad.error().message.find("ChecksumCRC32"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(CombinePartChecksums({"sha256", false}, {{"not base64!", 1}}));
}

TEST(ServerMultipart, AnUploadsChecksumIsCheckedKeptAndCombined) {
  stdfs::path root = stdfs::temp_directory_path() / ("s3rdma-mpc-" + std::to_string(getpid()));
  stdfs::create_directories(root / "bkt");
  LocalBackend backend(root.string());
  if (!backend.ProbeMetadataSupport().empty()) GTEST_SKIP() << "no user xattrs under /tmp here";
  MultipartUploads uploads(&backend, root.string());
  const std::string one(MultipartUploads::kMinPartSize, 'A'), two = "the tail";
  auto id = uploads.Create("bkt", "obj", {}, UploadChecksum{"crc32c", false});
  ASSERT_TRUE(id);
  auto kept = uploads.ChecksumOf("bkt", "obj", *id);
  ASSERT_TRUE(kept && *kept);
  EXPECT_EQ((*kept)->TypeName(), "COMPOSITE");
  auto with = [](const std::string& data) -> PartVerifier {
    return [data](const std::string&, const std::string&) -> s3rdmafs::Result<PartChecksum> {
      return PartChecksum{"crc32c", SumOf("crc32c", data)};
    };
  };
  auto p1 = uploads.UploadPart("bkt", "obj", *id, 1, Body(one), with(one));
  auto p2 = uploads.UploadPart("bkt", "obj", *id, 2, Body(two), with(two));
  ASSERT_TRUE(p1 && p2);
  auto listed = uploads.ListParts("bkt", "obj", *id);
  ASSERT_TRUE(listed && listed->size() == 2);
  EXPECT_EQ((*listed)[1].checksum.value, SumOf("crc32c", two));

  const CompletedPart good1{1, p1->etag, {"crc32c", SumOf("crc32c", one)}};
  auto wrong_part =
      uploads.Complete("bkt", "obj", *id, {good1, {2, p2->etag, {"crc32c", SumOf("crc32c", one)}}});
  ASSERT_FALSE(wrong_part);
  EXPECT_EQ(wrong_part.error().s3_code, "InvalidPart");
  // The composite: CRC32C over the parts' raw CRCs, then "-2".
  std::string raws;
  for (const auto* part : {&one, &two}) {
    std::string b64 = SumOf("crc32c", *part);
    unsigned char raw[8];
    int n = EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(b64.data()), 8);
    ASSERT_EQ(n, 6);
    raws.append(reinterpret_cast<char*>(raw), 4);
  }
  const std::string composite = SumOf("crc32c", raws) + "-2";
  MultipartUploads::Claim lie{{"crc32c", SumOf("crc32c", "other")}, ""};
  auto bad = uploads.Complete("bkt", "obj", *id, {good1, {2, p2->etag, {}}}, {}, lie);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().s3_code, "BadDigest");
  auto bad_type =
      uploads.Complete("bkt", "obj", *id, {good1, {2, p2->etag, {}}}, {}, {{}, "FULL_OBJECT"});
  ASSERT_FALSE(bad_type);
  EXPECT_EQ(bad_type.error().s3_code, "InvalidRequest");
  EXPECT_FALSE(backend.Stat("bkt", "obj")) << "a refused Complete publishes nothing";

  MultipartUploads::Claim truth{{"crc32c", composite}, "COMPOSITE"};
  auto done = uploads.Complete("bkt", "obj", *id, {good1, {2, p2->etag, {}}}, {}, truth);
  ASSERT_TRUE(done) << done.error().ToString();
  auto stat = backend.Stat("bkt", "obj");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->user,
            (UserMeta{{"x-amz-checksum-crc32c", composite}, {"x-amz-checksum-type", "COMPOSITE"}}));
  auto opened = backend.Open("bkt", "obj");
  ASSERT_TRUE(opened);
  auto parts = LocalBackend::Parts(opened->first, opened->second.size);
  close(opened->first);
  EXPECT_EQ(parts, (std::vector<LocalBackend::PartRecord>{{one.size(), SumOf("crc32c", one)},
                                                          {two.size(), SumOf("crc32c", two)}}));

  // A full-object CRC32: the CRC of all the bytes, also for a copied part.
  auto id2 = uploads.Create("bkt", "full", {}, UploadChecksum{"crc32", true});
  auto src = backend.Open("bkt", "obj");
  ASSERT_TRUE(id2 && src);
  auto c1 = uploads.CopyPart("bkt", "full", *id2, 1, src->first, 0, one.size());
  close(src->first);
  auto c2 = uploads.UploadPart(
      "bkt", "full", *id2, 2, Body(two), [&](const std::string&, const std::string&) {
        return s3rdmafs::Result<PartChecksum>(PartChecksum{"crc32", SumOf("crc32", two)});
      });
  ASSERT_TRUE(c1 && c2);
  EXPECT_EQ(c1->checksum.value, SumOf("crc32", one)) << "a copied part gets the upload's checksum";
  auto full = uploads.Complete("bkt", "full", *id2, {{1, c1->etag, {}}, {2, c2->etag, {}}});
  ASSERT_TRUE(full) << full.error().ToString();
  EXPECT_EQ(backend.Stat("bkt", "full")->user,
            (UserMeta{{"x-amz-checksum-crc32", SumOf("crc32", one + two)},
                      {"x-amz-checksum-type", "FULL_OBJECT"}}));
  stdfs::remove_all(root);
}

TEST(ServerConfigFile, EveryKeyAndTheErrors) {
  stdfs::path f = stdfs::temp_directory_path() / ("s3rdma-conf-" + std::to_string(getpid()));
  std::ofstream(f) << "listen = \"0.0.0.0\"\nport = 9100\nroot = \"/srv/s3\"\nregion = \"eu-1\"\n"
                      "domain = \"s3.local\"\nrdma_listen = \"10.0.0.5:9010\"\n"
                      "log_level = \"debug\"\nrdma_staging_per_request = \"8MiB\"\n"
                      "rdma_requests_per_connection = 4\n"
                      "[[keys]]\naccess_key = \"AK\"\nsecret_key = \"SK\"\n";
  auto c = LoadServerConfig(f.string());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->rdma_staging_per_request, 8ull << 20);
  EXPECT_EQ(c->rdma_requests_per_connection, 4u);
  EXPECT_EQ(c->listen, "0.0.0.0");
  EXPECT_EQ(c->port, 9100);
  EXPECT_EQ(c->root, "/srv/s3");
  EXPECT_EQ(c->rdma_listen, "10.0.0.5:9010");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->keys.at("AK"), "SK");
  std::ofstream(f) << "prot = 1\nport = \"x\"\n";
  auto bad = LoadServerConfig(f.string());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("prot: unknown key"), std::string::npos);
  EXPECT_NE(bad.error().message.find("port: unknown key or wrong type"), std::string::npos);
  std::ofstream(f) << "[upstream]\nendpoint = \"http://rgw:7480\"\nregion = \"eu-2\"\n"
                      "profile = \"gw\"\nstall_timeout_s = 9\n";
  auto gw = LoadServerConfig(f.string());
  ASSERT_TRUE(gw) << gw.error().ToString();
  EXPECT_TRUE(gw->gateway());
  EXPECT_EQ(gw->upstream.endpoint, "http://rgw:7480");
  EXPECT_EQ(gw->upstream.region, "eu-2");
  EXPECT_EQ(gw->upstream.profile, "gw");
  EXPECT_EQ(gw->upstream.stall_timeout_s, 9u);
  std::ofstream(f) << "[upstream]\nendpont = \"x\"\nconnect_timeout_ms = -1\n";
  bad = LoadServerConfig(f.string());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("upstream.endpont: unknown key"), std::string::npos);
  EXPECT_NE(bad.error().message.find("upstream.connect_timeout_ms: unknown key or wrong type"),
            std::string::npos);
  stdfs::remove(f);
}

// What a gateway sends on: the client's end-to-end headers and query, never
// its signature, framing or presigned-URL parameters (made again for the
// upstream).
TEST(Gateway, DropsTheClientsAuthAndFraming) {
  using s3rdma::server::IsGatewayOwnedHeader;
  using s3rdma::server::WithoutAuthParameters;
  for (const char* owned : {"authorization", "x-amz-date", "x-amz-content-sha256", "host",
                            "content-length", "connection", "transfer-encoding", "expect",
                            "x-amz-security-token", "x-amz-rdma-token", "proxy-authorization"})
    EXPECT_TRUE(IsGatewayOwnedHeader(owned)) << owned;
  for (const char* kept : {"range", "if-match", "x-amz-meta-a", "content-type", "content-md5",
                           "x-amz-copy-source", "x-amz-checksum-crc32", "x-amz-acl"})
    EXPECT_FALSE(IsGatewayOwnedHeader(kept)) << kept;
  EXPECT_EQ(WithoutAuthParameters("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&"
                                  "X-Amz-Date=1&X-Amz-Expires=60&X-Amz-SignedHeaders=host&"
                                  "X-Amz-Signature=ff&response-content-type=text%2Fplain"),
            "response-content-type=text%2Fplain");
  EXPECT_EQ(WithoutAuthParameters("AWSAccessKeyId=a&Expires=1&Signature=x"), "");
  EXPECT_EQ(WithoutAuthParameters("uploadId=u&partNumber=2"), "uploadId=u&partNumber=2");
  EXPECT_EQ(WithoutAuthParameters("list-type=2&prefix=&delimiter=%2F"),
            "list-type=2&prefix=&delimiter=%2F");
  EXPECT_EQ(WithoutAuthParameters(""), "");
}

namespace {
// Decodes `body` fed one byte at a time; the payload, or the error's S3 code.
std::string DecodeChunked(const std::string& body) {
  s3rdma::server::AwsChunkedDecoder d;
  std::string out;
  for (char c : body) {
    auto r = d.Feed(&c, 1, [&](const char* p, size_t n) { return out.append(p, n), true; });
    if (!r) return "error " + r.error().s3_code;
  }
  if (auto r = d.Finish(); !r) return "error " + r.error().s3_code;
  return out;
}
}  // namespace

TEST(ServerAwsChunked, DecodesAcrossAnySplitAndNamesWhatIsMalformed) {
  EXPECT_EQ(DecodeChunked("5\r\nhello\r\n1\r\n!\r\n0\r\nx-amz-checksum-crc32:q=\r\n\r\n"),
            "hello!");
  for (const char* bad : {"zz\r\nhello\r\n", "5\r\nhel", "5\r\nhelloX\r\n0\r\n\r\n", "3\nabc\r\n",
                          "0\r\n\r\nextra", "0\r\nno-colon\r\n\r\n"})
    EXPECT_EQ(DecodeChunked(bad), "error IncompleteBody") << bad;
  EXPECT_EQ(DecodeChunked(std::string(5000, '1')), "error IncompleteBody") << "a line too long";
}
