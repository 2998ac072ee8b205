// Routes S3 requests (path-style) to the backend and writes S3 answers.
// Thread-safety: Handle may run concurrently on many connections.
#pragma once

#include <atomic>
#include <optional>
#include <pugixml.hpp>
#include <string>

#include "checksums.h"
#include "exchange.h"
#include "local_backend.h"
#include "multipart.h"
#include "range.h"
#include "s3rdmafs/protocol/token.h"
#include "server_config.h"
#include "server_stats.h"

namespace s3rdma::server {

class RdmaEndpoint;
class Upstream;
struct AuthResult;

class S3Handler {
 public:
  // `rdma` (optional) is the RC data path; without it RDMA tokens are declined.
  // `upstream` (gateway mode): every request but the RDMA data path goes
  // there, and `backend` is not used.
  // `stats` (optional) is counted into.
  S3Handler(const ServerConfig& config, LocalBackend* backend, RdmaEndpoint* rdma = nullptr,
            Upstream* upstream = nullptr, ServerStats* stats = nullptr)
      : config_(config),
        backend_(backend),
        uploads_(backend, config.root),
        rdma_(rdma),
        upstream_(upstream),
        stats_(stats ? stats : &own_stats_) {}
  void Handle(Exchange& ex);

 private:
  void SendError(Exchange& ex, int status, const std::string& code, const std::string& message,
                 const std::string& resource);
  void SendBackendError(Exchange& ex, const s3rdmafs::Error& e, const std::string& resource);
  void ListBuckets(Exchange& ex);
  void RdmaRequest(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                   const std::string& key);
  void RdmaConnect(Exchange& ex, const AuthResult& auth, const std::string& bucket);
  // 501 with x-amz-rdma-reply: 501; `code` is the S3 error code (docs/PROTOCOL.md).
  void RdmaDecline(Exchange& ex, const std::string& why, const std::string& resource,
                   const char* code = "NotImplemented");
  // A token the data path could not serve: declined, refused or failed.
  void SendRdmaFailure(Exchange& ex, const s3rdmafs::Error& e, const std::string& resource);
  // Gateway mode (s3_handler_gateway.cc).
  void Gateway(Exchange& ex, const AuthResult& auth, const std::string& bucket,
               const std::string& key);
  void Forward(Exchange& ex, const AuthResult& auth, const std::string& bucket,
               const std::string& key);
  void GatewayRdmaGet(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                      const std::string& key, const s3rdmafs::rdma::RcToken& token);
  void GatewayRdmaPut(Exchange& ex, const AuthResult& auth, const std::string& bucket,
                      const std::string& key, const s3rdmafs::rdma::RcToken& token);
  void SendUpstreamFailure(Exchange& ex, const s3rdmafs::Error& e, const std::string& resource);
  // Access (s3_handler_access.cc): canned ACLs, what an anonymous request
  // may do, CORS preflights.
  void SendAcl(Exchange& ex, const std::string& bucket, const std::string& key);
  void PutAcl(Exchange& ex, const std::string& bucket, const std::string& key);
  s3rdmafs::Result<void> AdmitAnonymous(const Request& req, const std::string& bucket,
                                        const std::string& key,
                                        const std::map<std::string, std::string>& query);
  void Preflight(Exchange& ex);
  enum class Listing { kV1, kV2, kVersions };  // ?versions: every object is its one "null" version
  void ListObjects(Exchange& ex, const std::string& bucket, Listing kind);
  void ListUploads(Exchange& ex, const std::string& bucket);
  void GetObject(Exchange& ex, const std::string& bucket, const std::string& key, bool head);
  // Writes: s3_handler_write.cc. PutObject and RdmaPut also serve UploadPart
  // (a partNumber + uploadId query).
  void PutObject(Exchange& ex, const std::string& bucket, const std::string& key,
                 const AuthResult& auth);
  void RdmaPut(Exchange& ex, const AuthResult& auth, const std::string& bucket,
               const std::string& key, const s3rdmafs::rdma::RcToken& token);
  void CopyObject(Exchange& ex, const std::string& bucket, const std::string& key);
  // `user`: what is kept with a new object; read once the body is in (the
  // verifier may add the checksum it computed). `checksum`: the one the
  // request carries, which `fill` feeds and `verify` checks; for a part of an
  // upload created with a checksum it must be that algorithm, and is set to
  // it (computed and kept) when the request names none.
  s3rdmafs::Result<std::string> StoreBody(
      const std::string& bucket, const std::string& key, const Request& req, const UserMeta& user,
      const std::function<bool(const LocalBackend::Writer&)>& fill,
      const LocalBackend::Verifier& verify, bool want_sha256,
      std::optional<WantedChecksum>& checksum);
  void CreateUpload(Exchange& ex, const std::string& bucket, const std::string& key);
  void CompleteUpload(Exchange& ex, const std::string& bucket, const std::string& key);
  void ListUploadParts(Exchange& ex, const std::string& bucket, const std::string& key);
  void DeleteObjects(Exchange& ex, const std::string& bucket);
  // Reads a small XML request body (multi-delete, complete-upload) into `doc`;
  // false when the answer has been sent already (client gone, malformed XML).
  bool ReadXmlBody(Exchange& ex, const std::string& resource, pugi::xml_document* doc);
  Headers CommonHeaders();

  const ServerConfig& config_;
  LocalBackend* backend_;
  MultipartUploads uploads_;
  RdmaEndpoint* rdma_;
  Upstream* upstream_;
  ServerStats own_stats_;  // when main keeps none
  ServerStats* stats_;
  std::atomic<uint64_t> request_seq_{0};
};

}  // namespace s3rdma::server
