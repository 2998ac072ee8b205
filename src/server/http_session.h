// The HTTP/1.1 front end (Boost.Beast, synchronous, one thread per
// connection): simple, and sendfile(2) keeps large GETs copy-free.
#pragma once

#include <atomic>
#include <string>

#include "s3_handler.h"

namespace s3rdma::server {

// Accepts connections on listen:port until the process ends. Returns an error
// text if the socket cannot be bound. `on_listening` gets the bound port.
std::string RunHttpServer(const std::string& listen, uint16_t port, unsigned max_connections,
                          S3Handler* handler, const std::function<void(uint16_t)>& on_listening);

}  // namespace s3rdma::server
