#include "s3rdmafs/common/size_parse.h"

#include <cctype>
#include <string>

namespace s3rdmafs {
namespace {

// Splits "123abc" into 123 and "abc"; fails on no digits or overflow.
bool SplitNumber(std::string_view text, uint64_t* value, std::string* unit) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t next = v * 10 + (text[i] - '0');
    if (next / 10 != v) return false;
    v = next;
    ++i;
  }
  if (i == 0) return false;
  while (i < text.size() && text[i] == ' ') ++i;
  unit->clear();
  for (; i < text.size(); ++i) unit->push_back(static_cast<char>(std::tolower(text[i])));
  *value = v;
  return true;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t v;
  std::string unit;
  if (!SplitNumber(text, &v, &unit))
    return MakeError(Errc::kInvalidArgument, "not a size: '" + std::string(text) + "'");
  int shift = 0;
  if (unit.empty() || unit == "b")
    shift = 0;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    shift = 10;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    shift = 20;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    shift = 30;
  else if (unit == "t" || unit == "tb" || unit == "tib")
    shift = 40;
  else
    return MakeError(Errc::kInvalidArgument,
                     "unknown size unit in '" + std::string(text) + "' (use K, M, G, T)");
  if (shift && (v >> (64 - shift)) != 0)
    return MakeError(Errc::kInvalidArgument, "size too large: '" + std::string(text) + "'");
  return v << shift;
}

Result<uint64_t> ParseDurationMs(std::string_view text) {
  uint64_t v;
  std::string unit;
  if (!SplitNumber(text, &v, &unit))
    return MakeError(Errc::kInvalidArgument, "not a duration: '" + std::string(text) + "'");
  uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit.empty() || unit == "s") scale = 1000;
  if (unit == "m" || unit == "min") scale = 60000;
  if (unit == "h") scale = 3600000;
  constexpr uint64_t kLongest = 365ull * 24 * 3600000;  // a year: longer is a typo
  if (scale && v > kLongest / scale)
    return MakeError(Errc::kInvalidArgument,
                     "duration '" + std::string(text) + "' is longer than a year");
  if (scale) return v * scale;
  return MakeError(Errc::kInvalidArgument,
                   "unknown duration unit in '" + std::string(text) + "' (use ms, s, m, h)");
}

}  // namespace s3rdmafs
