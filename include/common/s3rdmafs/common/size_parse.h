// Human sizes ("64MiB", "1G", "4096") and durations ("500ms", "2s", "1m") for
// config values and command-line overrides.
#pragma once

#include <cstdint>
#include <string_view>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs {

Result<uint64_t> ParseSize(std::string_view text);
Result<uint64_t> ParseDurationMs(std::string_view text);

}  // namespace s3rdmafs
