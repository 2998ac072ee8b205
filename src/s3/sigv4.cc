#include "s3rdmafs/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>

namespace s3rdmafs::s3 {

std::string HexEncode(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr)) return {};
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string UriEncode(std::string_view text, bool encode_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + 8);
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool UriDecode(std::string_view text, std::string* out, bool plus_is_space) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return false;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

std::string AmzDate(std::time_t t) {
  std::tm tmv;
  gmtime_r(&t, &tmv);
  char buf[20];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tmv);
  return buf;
}

std::string CanonicalQueryString(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos <= raw.size() && !raw.empty()) {
    size_t amp = raw.find('&', pos);
    std::string_view part = raw.substr(pos, amp == std::string_view::npos ? raw.npos : amp - pos);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string name, value;
      UriDecode(part.substr(0, eq), &name);
      if (eq != std::string_view::npos) UriDecode(part.substr(eq + 1), &value);
      params.emplace_back(UriEncode(name, true), UriEncode(value, true));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims and collapses inner runs of spaces, as SigV4 requires.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string CanonicalRequest(const CanonicalInput& in) {
  std::string out;
  out += in.method;
  out += '\n';
  out += in.canonical_uri.empty() ? std::string_view("/") : in.canonical_uri;
  out += '\n';
  out += CanonicalQueryString(in.raw_query);
  out += '\n';
  // Canonical headers in signed-header order; repeated headers join with ','.
  size_t pos = 0;
  std::string_view sh = in.signed_headers;
  while (pos < sh.size()) {
    size_t semi = sh.find(';', pos);
    std::string_view name = sh.substr(pos, semi == sh.npos ? sh.npos : semi - pos);
    std::string value;
    bool first = true;
    for (auto& [k, v] : *in.headers) {
      if (Lower(k) == name) {
        if (!first) value.push_back(',');
        value += CanonicalHeaderValue(v);
        first = false;
      }
    }
    out += name;
    out += ':';
    out += value;
    out += '\n';
    if (semi == sh.npos) break;
    pos = semi + 1;
  }
  out += '\n';
  out += in.signed_headers;
  out += '\n';
  out += in.payload_hash;
  return out;
}

std::string Scope(std::string_view amz_date, std::string_view region, std::string_view service) {
  std::string s(amz_date.substr(0, 8));
  s += '/';
  s += region;
  s += '/';
  s += service;
  s += "/aws4_request";
  return s;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string s = "AWS4-HMAC-SHA256\n";
  s += amz_date;
  s += '\n';
  s += scope;
  s += '\n';
  s += Sha256Hex(canonical_request);
  return s;
}

std::string SignatureHex(std::string_view secret_key, std::string_view amz_date,
                         std::string_view region, std::string_view service,
                         std::string_view string_to_sign) {
  std::string k = HmacSha256("AWS4" + std::string(secret_key), amz_date.substr(0, 8));
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  k = HmacSha256(k, "aws4_request");
  return HexEncode(HmacSha256(k, string_to_sign));
}

void SignRequest(const Credentials& creds, std::string_view region, std::string_view method,
                 std::string_view canonical_uri, std::string_view raw_query,
                 std::string_view payload_hash, std::time_t now, HeaderList* headers) {
  if (creds.anonymous()) return;
  std::string date = AmzDate(now);
  headers->emplace_back("x-amz-date", date);
  headers->emplace_back("x-amz-content-sha256", std::string(payload_hash));
  if (!creds.session_token.empty())
    headers->emplace_back("x-amz-security-token", creds.session_token);
  std::vector<std::string> names;
  for (auto& [k, v] : *headers) names.push_back(Lower(k));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (auto& n : names) {
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += n;
  }
  CanonicalInput in{method, canonical_uri, raw_query, headers, signed_headers, payload_hash};
  std::string scope = Scope(date, region, "s3");
  std::string sts = StringToSign(date, scope, CanonicalRequest(in));
  std::string sig = SignatureHex(creds.secret_key, date, region, "s3", sts);
  headers->emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" +
                                             scope + ", SignedHeaders=" + signed_headers +
                                             ", Signature=" + sig);
}

}  // namespace s3rdmafs::s3
