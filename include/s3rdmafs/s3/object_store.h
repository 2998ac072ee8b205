// ObjectStore: the one interface to an S3-compatible service. The real
// implementation is S3Client (HTTP via libcurl); tests use an in-memory fake
// and failure-injecting decorators.
//
// Calls are asynchronous: the callback runs on the implementation's I/O thread
// and must not block. The synchronous helpers wait on a caller's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "s3rdmafs/common/result.h"

namespace s3rdmafs::s3 {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string etag;  // as the server sent it, quotes included
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;
  std::string continuation_token;
  uint32_t max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::string next_token;  // empty when not truncated
};

// A ranged GET written straight into caller memory (cache blocks). The spans
// are filled in order; the server must send exactly `length` bytes.
struct GetRequest {
  std::string key;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string if_match;  // ETag the bytes must belong to ("" = any)
  std::vector<std::span<std::byte>> into;
};

struct GetResult {
  uint64_t bytes = 0;
  std::string etag;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual void HeadAsync(const std::string& key, std::function<void(Result<ObjectInfo>)> done) = 0;
  virtual void ListAsync(const ListRequest& request,
                         std::function<void(Result<ListPage>)> done) = 0;
  virtual void GetAsync(GetRequest request, std::function<void(Result<GetResult>)> done) = 0;

  // Blocking helpers for callers that may wait (FUSE worker threads, startup).
  Result<ObjectInfo> Head(const std::string& key);
  Result<ListPage> List(const ListRequest& request);
  Result<GetResult> Get(GetRequest request);
};

}  // namespace s3rdmafs::s3
