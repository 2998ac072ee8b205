#include "s3rdmafs/common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace s3rdmafs {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
const char* const kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
const int kSyslogPriority[] = {7, 6, 4, 3};  // debug, info, warning, err

// stderr is the journal when systemd says so (JOURNAL_STREAM names its
// device:inode): then each line starts with "<priority>", which journald turns
// into the entry's PRIORITY, and journald stamps the time itself.
bool StderrIsJournal() {
  const char* js = getenv("JOURNAL_STREAM");
  struct stat st;
  if (!js || fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  for (int i = 0; i < 4; ++i) {
    std::string_view name = kNames[i];
    if (text.size() == name.size()) {
      bool eq = true;
      for (size_t j = 0; j < name.size(); ++j) eq &= (text[j] & ~0x20) == name[j];
      if (eq) {
        *out = static_cast<LogLevel>(i);
        return true;
      }
    }
  }
  return false;
}

void LogLine(LogLevel level, const char* fmt, ...) {
  static const bool journal = StderrIsJournal();
  char buf[2048];
  int n;
  if (journal) {
    n = snprintf(buf, sizeof buf, "<%d>%s ", kSyslogPriority[static_cast<int>(level)],
                 kNames[static_cast<int>(level)]);
  } else {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tm tmv;
    gmtime_r(&ts.tv_sec, &tmv);
    n = snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03ld %-5s ", tmv.tm_hour, tmv.tm_min, tmv.tm_sec,
                 ts.tv_nsec / 1000000, kNames[static_cast<int>(level)]);
  }
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  size_t len =
      n + (m < 0 ? 0 : (static_cast<size_t>(m) < sizeof buf - n - 1 ? m : sizeof buf - n - 2));
  buf[len++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, buf, len);
  (void)ignored;
}

}  // namespace s3rdmafs
