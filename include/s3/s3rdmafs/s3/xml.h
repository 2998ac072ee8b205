// S3 XML documents we read (pugixml underneath): ListObjectsV2 results and
// error bodies. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "s3rdmafs/common/result.h"
#include "s3rdmafs/s3/object_store.h"

namespace s3rdmafs::s3 {

// Keys are URL-decoded when the document says <EncodingType>url</EncodingType>.
Result<ListPage> ParseListObjectsV2(std::string_view xml);

struct S3ErrorBody {
  std::string code;  // "NoSuchKey", "AccessDenied", ... ("" if none)
  std::string message;
};
S3ErrorBody ParseErrorBody(std::string_view xml);

// The text of <root><field> in a write's answer (InitiateMultipartUploadResult
// UploadId, CopyObjectResult ETag, ...). An <Error> document - S3 may send one
// with status 200 for CompleteMultipartUpload and copies - is an error.
// `allow_empty`: an empty or missing field is "" instead of an error.
Result<std::string> ParseResultField(std::string_view xml, const char* root, const char* field,
                                     bool allow_empty = false);
// The CompleteMultipartUpload request body.
std::string CompleteUploadXml(const std::vector<CompletedPart>& parts);

// "2009-10-12T17:50:30.000Z" -> ns since the epoch; false when malformed.
bool ParseIso8601(std::string_view text, int64_t* ns);
// "Wed, 21 Oct 2015 07:28:00 GMT" -> ns since the epoch.
bool ParseHttpDate(std::string_view text, int64_t* ns);

}  // namespace s3rdmafs::s3
