#include "s3rdmafs/s3/credentials.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

using namespace s3rdmafs;

namespace {
struct Env {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> Fn() {
    return [this](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};
std::string TempFile(const std::string& text) {
  char path[] = "/tmp/s3rdmafs-cred-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST(Credentials, ChainOrder) {
  std::string creds = TempFile(
      "[default]\naws_access_key_id = FILEAK\naws_secret_access_key = FILESK\n"
      "# "
      "comment\n[dev]\naws_access_key_id=DEVAK\naws_secret_access_key=DEVSK\naws_session_token="
      "DEVTOK\n");
  std::string cfg =
      TempFile("[profile cfgonly]\naws_access_key_id = CFGAK\naws_secret_access_key = CFGSK\n");
  Env env;
  env.vars = {{"AWS_SHARED_CREDENTIALS_FILE", creds}, {"AWS_CONFIG_FILE", cfg}};
  s3::CredentialSources src;
  src.getenv = env.Fn();

  auto r = s3::ResolveCredentials(src);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->credentials.access_key, "FILEAK");

  env.vars["AWS_PROFILE"] = "dev";
  r = s3::ResolveCredentials(src);
  EXPECT_EQ(r->credentials.access_key, "DEVAK");
  EXPECT_EQ(r->credentials.session_token, "DEVTOK");

  src.profile = "cfgonly";  // config beats $AWS_PROFILE; found in the config file
  r = s3::ResolveCredentials(src);
  EXPECT_EQ(r->credentials.access_key, "CFGAK");

  env.vars["AWS_ACCESS_KEY_ID"] = "ENVAK";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "ENVSK";
  r = s3::ResolveCredentials(src);
  EXPECT_EQ(r->credentials.access_key, "ENVAK");
  EXPECT_EQ(r->source, "environment");

  src.access_key = "CONFAK";
  src.secret_key = "CONFSK";
  r = s3::ResolveCredentials(src);
  EXPECT_EQ(r->credentials.access_key, "CONFAK");

  src.anonymous = true;
  src.access_key.clear();
  r = s3::ResolveCredentials(src);
  EXPECT_TRUE(r->credentials.anonymous());
  unlink(creds.c_str());
  unlink(cfg.c_str());
}

TEST(Credentials, NoneFoundIsAClearError) {
  Env env;
  env.vars = {{"HOME", "/nonexistent"}};
  s3::CredentialSources src;
  src.getenv = env.Fn();
  auto r = s3::ResolveCredentials(src);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kAccessDenied);
  EXPECT_NE(r.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
  EXPECT_NE(r.error().message.find("anonymous"), std::string::npos);
}
