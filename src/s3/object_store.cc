#include "s3rdmafs/s3/object_store.h"

#include <charconv>
#include <future>

#include "s3rdmafs/s3/sigv4.h"

namespace s3rdmafs::s3 {
namespace {
template <typename T, typename Start>
Result<T> Wait(Start start) {
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  start([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}
}  // namespace

Result<ObjectInfo> ObjectStore::Head(const std::string& key) {
  return Wait<ObjectInfo>([&](auto cb) { HeadAsync(key, std::move(cb)); });
}
Result<ObjectStore::HeadWithBody> ObjectStore::HeadWithBodyOf(const std::string& key,
                                                              std::span<std::byte> into) {
  return Wait<HeadWithBody>([&](auto cb) { HeadWithBodyAsync(key, into, std::move(cb)); });
}
Result<ListPage> ObjectStore::List(const ListRequest& request) {
  return Wait<ListPage>([&](auto cb) { ListAsync(request, std::move(cb)); });
}
Result<GetResult> ObjectStore::Get(GetRequest request) {
  return Wait<GetResult>([&](auto cb) { GetAsync(std::move(request), std::move(cb)); });
}
Result<std::string> ObjectStore::Put(PutRequest request) {
  return Wait<std::string>([&](auto cb) { PutAsync(std::move(request), std::move(cb)); });
}
Result<std::string> ObjectStore::CreateUpload(const std::string& key, const Metadata& meta) {
  return Wait<std::string>([&](auto cb) { CreateUploadAsync(key, meta, std::move(cb)); });
}
Result<std::string> ObjectStore::CopyPart(const CopyPartRequest& request) {
  return Wait<std::string>([&](auto cb) { CopyPartAsync(request, std::move(cb)); });
}
Result<std::string> ObjectStore::CompleteUpload(const std::string& key,
                                                const std::string& upload_id,
                                                const std::vector<CompletedPart>& parts,
                                                const WriteCondition& condition) {
  return Wait<std::string>(
      [&](auto cb) { CompleteUploadAsync(key, upload_id, parts, condition, std::move(cb)); });
}
Result<void> ObjectStore::AbortUpload(const std::string& key, const std::string& upload_id) {
  return Wait<void>([&](auto cb) { AbortUploadAsync(key, upload_id, std::move(cb)); });
}
Result<std::string> ObjectStore::Copy(const std::string& source_key,
                                      const std::string& source_if_match, const std::string& key,
                                      const Metadata* replace) {
  return Wait<std::string>(
      [&](auto cb) { CopyAsync(source_key, source_if_match, key, replace, std::move(cb)); });
}
Result<void> ObjectStore::Delete(const std::string& key) {
  return Wait<void>([&](auto cb) { DeleteAsync(key, std::move(cb)); });
}

Result<std::unique_ptr<BodyStream>> ObjectStore::OpenBodyStream(const std::string& key, uint64_t,
                                                                uint64_t, const std::string&,
                                                                BodyStream::Clock::time_point,
                                                                const std::function<bool()>&) {
  return MakeError(Errc::kNotSupported, "no streamed GET of " + key + " from this store");
}

std::string BareEtag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

std::string MultipartEtag(const std::vector<CompletedPart>& parts) {
  std::string binary;
  for (const auto& p : parts) {
    const std::string hex = BareEtag(p.etag);
    if (hex.size() != 32) return {};
    for (size_t i = 0; i < 32; i += 2) {
      unsigned v = 0;
      auto [end, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
      if (ec != std::errc() || end != hex.data() + i + 2) return {};
      binary.push_back(static_cast<char>(v));
    }
  }
  return Md5Hex(binary) + "-" + std::to_string(parts.size());
}

}  // namespace s3rdmafs::s3
