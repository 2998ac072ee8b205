// The credentials chain, first match wins:
//   1. the config file (s3.access_key / s3.secret_key / s3.session_token)
//   2. the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
//   3. the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)
//      then the shared config file ($AWS_CONFIG_FILE or ~/.aws/config, section
//      "[profile NAME]"), for profile s3.profile, else $AWS_PROFILE, else "default"
//   4. anonymous, only when s3.anonymous is set.
// Thread-safety: pure function of its inputs.
#pragma once

#include <functional>
#include <string>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/sigv4.h"

namespace s3rdmafs::s3 {

struct CredentialSources {
  std::string access_key, secret_key, session_token;  // from the config file
  std::string profile;
  bool anonymous = false;
  std::function<const char*(const char*)> getenv;  // injectable for tests
};

struct ResolvedCredentials {
  Credentials credentials;
  std::string source;  // where they came from, for the log
};

Result<ResolvedCredentials> ResolveCredentials(const CredentialSources& sources);

}  // namespace s3rdmafs::s3
