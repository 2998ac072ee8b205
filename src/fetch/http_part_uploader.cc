#include "s3rdmafs/fetch/part_uploader.h"

namespace s3rdmafs::fetch {
namespace {

class HttpPartUploader final : public PartUploader {
 public:
  explicit HttpPartUploader(s3::ObjectStore* store) : store_(store) {}

  void Upload(UploadJob job, std::function<void(Result<std::string>)> done) override {
    s3::PutRequest put;
    put.key = std::move(job.key);
    if (job.file.empty())
      put.body.push_back(job.data);
    else
      put.body_file = job.file;
    put.meta = std::move(job.meta);
    put.condition = std::move(job.condition);
    put.upload_id = std::move(job.upload_id);
    put.part_number = job.part_number;
    store_->PutAsync(std::move(put), std::move(done));
  }
  const char* name() const override { return "http"; }

 private:
  s3::ObjectStore* store_;
};

}  // namespace

std::unique_ptr<PartUploader> MakeHttpPartUploader(s3::ObjectStore* store) {
  return std::make_unique<HttpPartUploader>(store);
}

}  // namespace s3rdmafs::fetch
