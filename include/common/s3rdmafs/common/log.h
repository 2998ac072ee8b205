// Minimal leveled logging to stderr (journald picks stderr up under systemd).
// Thread-safe: each line is formatted into a local buffer and written with one
// write(2), so lines from different threads never interleave.
#pragma once

#include <string_view>

namespace s3rdmafs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);
void LogLine(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace s3rdmafs

#define S3_LOG(level, ...)                                                      \
  do {                                                                          \
    if (static_cast<int>(level) >= static_cast<int>(::s3rdmafs::GetLogLevel())) \
      ::s3rdmafs::LogLine(level, __VA_ARGS__);                                  \
  } while (0)
#define LOG_DEBUG(...) S3_LOG(::s3rdmafs::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) S3_LOG(::s3rdmafs::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) S3_LOG(::s3rdmafs::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) S3_LOG(::s3rdmafs::LogLevel::kError, __VA_ARGS__)
