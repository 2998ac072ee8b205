// The single table of configuration keys (internal to the config layer).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "s3rdmafs/config/config.h"

namespace s3rdmafs::config {

enum class FieldKind { kString, kBool, kUint, kInt, kSize, kDuration, kMode, kEnum };

struct Field {
  const char* section;
  const char* key;
  FieldKind kind;
  const char* doc;
  bool secret = false;
  // Set from text (overrides and TOML strings); returns "" on success, else why not.
  std::function<std::string(Config&, const std::string&)> set_text;
  std::function<std::string(const Config&)> get_text;
};

const std::vector<Field>& Fields();

}  // namespace s3rdmafs::config
