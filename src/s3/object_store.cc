#include "s3rdmafs/s3/object_store.h"

#include <future>

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
Result<ListPage> ObjectStore::List(const ListRequest& request) {
  return Wait<ListPage>([&](auto cb) { ListAsync(request, std::move(cb)); });
}
Result<GetResult> ObjectStore::Get(GetRequest request) {
  return Wait<GetResult>([&](auto cb) { GetAsync(std::move(request), std::move(cb)); });
}

}  // namespace s3rdmafs::s3
