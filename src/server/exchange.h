// One HTTP request/response exchange, as the S3 handler sees it. The Beast
// session implements it; the handler never touches sockets, so the RDMA data
// path (issue 3) can plug in beside the HTTP body without changing routing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s3rdma::server {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;
  std::string target;     // raw request target
  std::string path;       // raw (still %-encoded) path part of target
  std::string raw_query;  // after '?', raw
  Headers headers;        // as received
  std::string Header(std::string_view lowercase_name) const;  // "" if absent
  bool HasHeader(std::string_view lowercase_name) const;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Request& request() const = 0;
  // Streams the request body to `sink` (which returns false to abort).
  // Sends "100 Continue" first when the client asked for it.
  virtual bool ReadBody(const std::function<bool(const char*, size_t)>& sink) = 0;
  // The pull form (a gateway hands the body on to its upstream): up to `cap`
  // bytes into `into`; 0 at the end of the body, -1 when it cannot be read.
  virtual long ReadSome(char* into, size_t cap) = 0;
  virtual void Send(int status, const Headers& headers, std::string_view body) = 0;
  // Sends `length` bytes of `fd` from `offset` (sendfile: no copy in user space).
  virtual void SendFile(int status, const Headers& headers, int fd, uint64_t offset,
                        uint64_t length) = 0;
  // A body streamed as it arrives from elsewhere: the status and headers with
  // its Content-Length, then its bytes in pieces. A piece that cannot be sent,
  // or an Abandon, closes the connection: the client sees a short body.
  virtual void BeginBody(int status, const Headers& headers, uint64_t content_length) = 0;
  virtual bool SendBodyPart(const char* data, size_t n) = 0;
  virtual void Abandon() = 0;
  // HEAD: headers with a Content-Length but no body.
  virtual void SendHeadersOnly(int status, const Headers& headers, uint64_t content_length) = 0;
};

}  // namespace s3rdma::server
