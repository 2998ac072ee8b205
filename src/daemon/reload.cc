#include "reload.h"

#include <signal.h>

#include <map>
#include <sstream>

#include "s3rdmafs/common/log.h"

namespace s3rdmafs::daemon {
namespace {

// "section.key" -> printed value, from the one printer the config has.
std::map<std::string, std::string> Flatten(const config::Config& c) {
  std::map<std::string, std::string> out;
  std::istringstream in(config::Print(c));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.size() > 2 && line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
    } else if (size_t eq = line.find(" = "); eq != std::string::npos) {
      out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
    }
  }
  return out;
}

bool Reloadable(const std::string& key) {
  return key == "metadata.attr_ttl" || key == "metadata.entry_ttl" ||
         key == "metadata.negative_ttl" || key == "log.level";
}

}  // namespace

void BlockReloadSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Reloader::Reloader(std::function<Result<config::Config>()> load, config::Config current,
                   fs::Filesystem* fs)
    : load_(std::move(load)), current_(std::move(current)), fs_(fs) {
  thread_ = std::thread([this] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    timespec tick{0, 200L * 1000 * 1000};  // how soon the destructor is noticed
    while (!stop_.load()) {
      if (sigtimedwait(&set, nullptr, &tick) == SIGHUP) ReloadNow();
    }
  });
}

Reloader::~Reloader() {
  stop_ = true;
  thread_.join();
}

std::string Reloader::ReloadNow() {
  auto fresh = load_();
  if (!fresh) {
    LOG_ERROR("SIGHUP: configuration not reloaded, nothing changed: %s",
              fresh.error().message.c_str());
    return "error";
  }
  auto before = Flatten(current_), after = Flatten(*fresh);
  std::string applied, remount;
  for (auto& [key, value] : after) {
    if (before[key] == value) continue;
    std::string& list = Reloadable(key) ? applied : remount;
    list += (list.empty() ? "" : ", ") + key + " = " + value;
  }
  meta::Ttls t;
  t.attr = std::chrono::milliseconds(fresh->metadata.attr_ttl_ms);
  t.entry = std::chrono::milliseconds(fresh->metadata.entry_ttl_ms);
  t.negative = std::chrono::milliseconds(fresh->metadata.negative_ttl_ms);
  fs_->SetTtls(t);
  LogLevel level;
  if (ParseLogLevel(fresh->log.level, &level)) SetLogLevel(level);
  if (!remount.empty())
    LOG_WARN("SIGHUP: changed but not applied until a remount: %s", remount.c_str());
  LOG_INFO("SIGHUP: configuration reloaded%s%s", applied.empty() ? " (no live change)" : ": ",
           applied.c_str());
  // Keys that need a remount keep their running values as "current".
  config::Config next = current_;
  next.metadata = fresh->metadata;
  next.log.level = fresh->log.level;
  current_ = next;
  return applied;
}

}  // namespace s3rdmafs::daemon
