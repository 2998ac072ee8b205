// Whole-buffer pread/pwrite on a staging file, errors as values (the write
// path's only file I/O), and a blocking form of PartUploader::Upload.
#pragma once

#include <cstdint>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/fetch/part_uploader.h"

namespace s3rdmafs::fs {

// kDiskFull for ENOSPC/EDQUOT, else kIo.
Result<void> PwriteAll(int fd, const std::byte* data, uint64_t n, uint64_t offset);
// Past the file's end reads zeros (a hole up to the logical size).
Result<void> PreadAll(int fd, std::byte* out, uint64_t n, uint64_t offset);
// Waits for the transport's answer (the transport bounds the request's time).
Result<std::string> UploadNow(fetch::PartUploader* uploader, fetch::UploadJob job);

}  // namespace s3rdmafs::fs
