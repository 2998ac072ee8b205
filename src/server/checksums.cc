#include "checksums.h"

#include <isa-l/crc.h>
#include <isa-l/crc64.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cctype>

namespace s3rdma::server {
namespace {

template <typename T>
std::string BigEndian(T v) {
  unsigned char be[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i)
    be[i] = static_cast<unsigned char>(v >> (8 * (sizeof(T) - 1 - i)));
  return Base64Of(be, sizeof(T));
}

class Crc32 final : public Checksum {
 public:
  void Update(const char* d, size_t n) override {
    crc_ = crc32_gzip_refl(crc_, reinterpret_cast<const unsigned char*>(d), n);
  }
  std::string Base64() override { return BigEndian(crc_); }

 private:
  uint32_t crc_ = 0;
};

class Crc32c final : public Checksum {
 public:
  void Update(const char* d, size_t n) override {
    // crc32_iscsi takes an int length: large spans go in pieces.
    for (size_t done = 0; done < n;) {
      int take = static_cast<int>(std::min<size_t>(n - done, 1u << 30));
      crc_ = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(d + done)), take, crc_);
      done += take;
    }
  }
  std::string Base64() override { return BigEndian(crc_ ^ 0xFFFFFFFFu); }

 private:
  uint32_t crc_ = 0xFFFFFFFFu;
};

class Crc64Nvme final : public Checksum {
 public:
  void Update(const char* d, size_t n) override { crc_.process_bytes(d, n); }
  std::string Base64() override { return BigEndian<uint64_t>(crc_.checksum()); }

 private:
  // CRC-64/NVME: poly 0xAD93D23594C93659, reflected, init and xorout all ones.
  boost::crc_optimal<64, 0xAD93D23594C93659ull, ~0ull, ~0ull, true, true> crc_;
};

class Sha final : public Checksum {
 public:
  explicit Sha(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~Sha() override { EVP_MD_CTX_free(ctx_); }
  void Update(const char* d, size_t n) override { EVP_DigestUpdate(ctx_, d, n); }
  std::string Base64() override {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out, &len);
    return Base64Of(out, static_cast<int>(len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::string Base64Of(const unsigned char* raw, int n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw, n);
  out.resize(len);
  return out;
}

std::unique_ptr<Checksum> Checksum::Named(const std::string& algorithm) {
  std::string a = algorithm;
  for (char& c : a) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  std::unique_ptr<Checksum> sum;
  if (a == "crc32")
    sum = std::make_unique<Crc32>();
  else if (a == "crc32c")
    sum = std::make_unique<Crc32c>();
  else if (a == "crc64nvme")
    sum = std::make_unique<Crc64Nvme>();
  else if (a == "sha1")
    sum = std::make_unique<Sha>(EVP_sha1());
  else if (a == "sha256")
    sum = std::make_unique<Sha>(EVP_sha256());
  if (sum) sum->header_ = "x-amz-checksum-" + a;
  return sum;
}

s3rdmafs::Result<std::optional<WantedChecksum>> ChecksumOf(const Request& req) {
  std::optional<WantedChecksum> wanted;
  for (const auto& [name, value] : req.headers) {
    std::string n = name;
    for (char& c : n) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (n.rfind("x-amz-checksum-", 0) != 0 || n == "x-amz-checksum-mode" ||
        n == "x-amz-checksum-type" || n == "x-amz-checksum-algorithm")
      continue;
    auto sum = Checksum::Named(n.substr(15));
    if (!sum)
      return s3rdmafs::MakeS3Error(400, "InvalidRequest", "unknown checksum header " + name);
    if (wanted)
      return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                   "Expecting a single x-amz-checksum- header. Multiple checksum "
                                   "types are not allowed.");
    wanted = WantedChecksum{std::move(sum), value};
  }
  if (!wanted && req.HasHeader("x-amz-sdk-checksum-algorithm")) {
    auto sum = Checksum::Named(req.Header("x-amz-sdk-checksum-algorithm"));
    if (!sum)
      return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                   "unknown x-amz-sdk-checksum-algorithm '" +
                                       req.Header("x-amz-sdk-checksum-algorithm") + "'");
    wanted = WantedChecksum{std::move(sum), ""};
  }
  return wanted;
}

s3rdmafs::Result<void> CheckDigest(WantedChecksum& wanted) {
  std::string got = wanted.sum->Base64();
  if (wanted.expected.empty() || wanted.expected == got) {
    wanted.expected = got;  // what is kept and returned
    return {};
  }
  return s3rdmafs::MakeS3Error(
      400, "BadDigest",
      "The " + wanted.sum->header() + " you specified did not match the calculated checksum.");
}

}  // namespace s3rdma::server
