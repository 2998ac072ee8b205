#include "checksums.h"

#include <isa-l/crc.h>
#include <isa-l/crc64.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cctype>

#include "s3rdmafs/protocol/crc32c.h"

namespace s3rdma::server {
namespace {

// Base64 of the big-endian bytes of `v`, as S3 writes a CRC.
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
  void Update(const char* d, size_t n) override { crc_.Update(d, n); }
  std::string Base64() override { return crc_.Base64(); }

 private:
  s3rdmafs::protocol::Crc32c crc_;  // the one the mount computes for RDMA uploads
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

// Reflected CRCs whose register starts and ends inverted (CRC-32, CRC-32C,
// CRC-64/NVME) combine without the data: crc(A B) = crc(A) * x^(8|B|) xor
// crc(B), mod the polynomial, in the reflected bit order (the top bit is x^0).
template <typename T>
class CrcCombiner {
 public:
  explicit CrcCombiner(T reflected_poly) : poly_(reflected_poly) {}
  T Combine(T a, T b, uint64_t b_bytes) const { return Multiply(PowerOfX8(b_bytes), a) ^ b; }

 private:
  static constexpr T kOne = T(1) << (8 * sizeof(T) - 1);  // x^0

  T Multiply(T a, T b) const {
    T product = 0;
    for (T term = kOne; term != 0; term >>= 1) {
      if (a & term) product ^= b;
      b = (b & 1) ? (b >> 1) ^ poly_ : b >> 1;  // b *= x
    }
    return product;
  }
  // x^(8n) by repeated squaring: log n multiplications for any part size.
  T PowerOfX8(uint64_t n) const {
    T result = kOne, power = kOne >> 8;  // x^8
    for (; n != 0; n >>= 1) {
      if (n & 1) result = Multiply(power, result);
      power = Multiply(power, power);
    }
    return result;
  }

  T poly_;
};

// Strict base64 (S3's digests): false for anything else.
bool DecodeBase64(const std::string& in, std::string* raw) {
  if (in.empty() || in.size() % 4 != 0 ||
      in.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
          std::string::npos)
    return false;
  size_t pad = in.size() - in.find_last_not_of('=') - 1;
  if (pad > 2 || in.find('=') < in.size() - pad) return false;
  raw->assign(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw->data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return false;
  raw->resize(static_cast<size_t>(n) - pad);
  return true;
}

template <typename T>
T FromBigEndian(const std::string& raw) {
  T v = 0;
  for (unsigned char c : raw) v = static_cast<T>(v << 8) | c;
  return v;
}

size_t DigestBytes(const std::string& algorithm) {
  if (algorithm == "crc32" || algorithm == "crc32c") return 4;
  if (algorithm == "crc64nvme") return 8;
  if (algorithm == "sha1") return 20;
  return 32;  // sha256
}

}  // namespace

s3rdmafs::Result<std::optional<UploadChecksum>> UploadChecksumOf(const Request& req) {
  std::string algorithm = req.Header("x-amz-checksum-algorithm");
  std::string type = req.Header("x-amz-checksum-type");
  if (algorithm.empty() && type.empty()) return std::nullopt;
  if (algorithm.empty())
    return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                 "x-amz-checksum-type needs an x-amz-checksum-algorithm");
  for (char& c : algorithm) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (!Checksum::Named(algorithm))
    return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                 "unknown x-amz-checksum-algorithm '" +
                                     req.Header("x-amz-checksum-algorithm") +
                                     "' (CRC32, CRC32C, CRC64NVME, SHA1, SHA256)");
  UploadChecksum u{algorithm, algorithm == "crc64nvme"};
  if (type == "FULL_OBJECT")
    u.full_object = true;
  else if (type == "COMPOSITE")
    u.full_object = false;
  else if (!type.empty())
    return s3rdmafs::MakeS3Error(
        400, "InvalidRequest",
        "unknown x-amz-checksum-type '" + type + "' (COMPOSITE, FULL_OBJECT)");
  const bool crc = algorithm.rfind("crc", 0) == 0;
  if ((u.full_object && !crc) || (!u.full_object && algorithm == "crc64nvme"))
    return s3rdmafs::MakeS3Error(400, "InvalidRequest",
                                 "The " + u.TypeName() + " checksum type cannot be used with the " +
                                     req.Header("x-amz-checksum-algorithm") + " algorithm");
  return u;
}

s3rdmafs::Result<std::string> CombinePartChecksums(
    const UploadChecksum& upload, const std::vector<std::pair<std::string, uint64_t>>& parts) {
  const size_t bytes = DigestBytes(upload.algorithm);
  std::vector<std::string> raws;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string raw;
    if (!DecodeBase64(parts[i].first, &raw) || raw.size() != bytes)
      return s3rdmafs::MakeS3Error(400, "InvalidPart",
                                   "part " + std::to_string(i + 1) + "'s " +
                                       ChecksumElement(upload.algorithm) + " '" + parts[i].first +
                                       "' is not a " + std::to_string(bytes) + "-byte digest");
    raws.push_back(std::move(raw));
  }
  if (!upload.full_object) {
    auto sum = Checksum::Named(upload.algorithm);
    for (const auto& raw : raws) sum->Update(raw.data(), raw.size());
    return sum->Base64() + "-" + std::to_string(parts.size());
  }
  if (upload.algorithm == "crc64nvme") {
    const CrcCombiner<uint64_t> combiner(0x9A6C9329AC4BC9B5ull);  // 0xAD93D23594C93659 reflected
    uint64_t crc = 0;
    for (size_t i = 0; i < raws.size(); ++i)
      crc = i == 0 ? FromBigEndian<uint64_t>(raws[0])
                   : combiner.Combine(crc, FromBigEndian<uint64_t>(raws[i]), parts[i].second);
    return BigEndian(crc);
  }
  const CrcCombiner<uint32_t> combiner(upload.algorithm == "crc32" ? 0xEDB88320u : 0x82F63B78u);
  uint32_t crc = 0;
  for (size_t i = 0; i < raws.size(); ++i)
    crc = i == 0 ? FromBigEndian<uint32_t>(raws[0])
                 : combiner.Combine(crc, FromBigEndian<uint32_t>(raws[i]), parts[i].second);
  return BigEndian(crc);
}

std::string ChecksumElement(const std::string& algorithm) {
  std::string upper = algorithm;
  for (char& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return "Checksum" + upper;
}

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

s3rdmafs::Result<void> AddTrailerChecksum(const Request& req,
                                          std::optional<WantedChecksum>* wanted) {
  const std::string name = req.Header("x-amz-trailer");
  if (name.rfind("x-amz-checksum-", 0) != 0) return {};
  auto sum = Checksum::Named(name.substr(15));
  if (!sum) return s3rdmafs::MakeS3Error(400, "InvalidRequest", "unknown x-amz-trailer " + name);
  if (!*wanted || (*wanted)->sum->header() != sum->header())
    *wanted = WantedChecksum{std::move(sum), ""};
  return {};
}

}  // namespace s3rdma::server
