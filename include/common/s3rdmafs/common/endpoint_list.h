// An endpoint setting that names several servers (gateways in front of one
// store): URLs separated by ';', ',' or spaces. ';' is the one for -o and
// fstab, whose options split at commas. Shared by the config check and the
// S3 client, so both read a list the same way.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace s3rdmafs {

inline std::vector<std::string> SplitEndpointList(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    size_t cut = list.find_first_of(";, ");
    if (cut != 0) out.emplace_back(list.substr(0, cut));
    list = cut == std::string_view::npos ? std::string_view() : list.substr(cut + 1);
  }
  return out;
}

// One server's RDMA rails in an rdma.endpoint entry: "ADDR:PORT|ADDR:PORT"
// (several addresses or NICs of the same server).
inline std::vector<std::string> SplitRails(std::string_view entry) {
  std::vector<std::string> out;
  for (;;) {
    size_t cut = entry.find('|');
    out.emplace_back(entry.substr(0, cut));
    if (cut == std::string_view::npos) return out;
    entry.remove_prefix(cut + 1);
  }
}

}  // namespace s3rdmafs
