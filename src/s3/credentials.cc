#include "s3rdmafs/s3/credentials.h"

#include <fstream>
#include <map>

namespace s3rdmafs::s3 {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// The AWS shared files are INI: [section], key = value, '#' or ';' comments.
using Ini = std::map<std::string, std::map<std::string, std::string>>;
bool ReadIni(const std::string& path, Ini* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line, section;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trim(line.substr(1, line.size() - 2));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    (*out)[section][Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
  return true;
}

}  // namespace

Result<ResolvedCredentials> ResolveCredentials(const CredentialSources& src) {
  auto env = [&](const char* name) -> std::string {
    const char* v = src.getenv ? src.getenv(name) : nullptr;
    return v ? v : "";
  };
  if (src.anonymous) return ResolvedCredentials{{}, "anonymous (s3.anonymous)"};
  if (!src.access_key.empty())
    return ResolvedCredentials{{src.access_key, src.secret_key, src.session_token}, "config file"};
  std::string ak = env("AWS_ACCESS_KEY_ID"), sk = env("AWS_SECRET_ACCESS_KEY");
  if (!ak.empty() && !sk.empty())
    return ResolvedCredentials{{ak, sk, env("AWS_SESSION_TOKEN")}, "environment"};

  std::string profile = !src.profile.empty() ? src.profile : env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string home = env("HOME");
  std::string cred_file = env("AWS_SHARED_CREDENTIALS_FILE");
  if (cred_file.empty() && !home.empty()) cred_file = home + "/.aws/credentials";
  std::string config_file = env("AWS_CONFIG_FILE");
  if (config_file.empty() && !home.empty()) config_file = home + "/.aws/config";

  Ini ini;
  if (!cred_file.empty() && ReadIni(cred_file, &ini) && ini.count(profile)) {
    auto& s = ini[profile];
    if (!s["aws_access_key_id"].empty() && !s["aws_secret_access_key"].empty())
      return ResolvedCredentials{
          {s["aws_access_key_id"], s["aws_secret_access_key"], s["aws_session_token"]},
          cred_file + " [" + profile + "]"};
  }
  Ini cfg;
  std::string section = profile == "default" ? "default" : "profile " + profile;
  if (!config_file.empty() && ReadIni(config_file, &cfg) && cfg.count(section)) {
    auto& s = cfg[section];
    if (!s["aws_access_key_id"].empty() && !s["aws_secret_access_key"].empty())
      return ResolvedCredentials{
          {s["aws_access_key_id"], s["aws_secret_access_key"], s["aws_session_token"]},
          config_file + " [" + section + "]"};
  }
  return MakeError(Errc::kAccessDenied,
                   "no credentials found: set s3.access_key/s3.secret_key, AWS_ACCESS_KEY_ID/"
                   "AWS_SECRET_ACCESS_KEY, a profile '" +
                       profile + "' in " +
                       (cred_file.empty() ? std::string("~/.aws/credentials") : cred_file) +
                       ", or s3.anonymous = true for a public bucket");
}

}  // namespace s3rdmafs::s3
