#include "s3rdmafs/metrics/metrics_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "s3rdmafs/common/log.h"
#include "s3rdmafs/config/config.h"

namespace s3rdmafs::metrics {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

// One request per connection, answered synchronously; a client that sends
// nothing for 2 s is dropped (the socket has a receive timeout).
template <typename Socket>
void Answer(Socket& socket, const std::function<std::string()>& render) {
  timeval tv{2, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  boost::beast::flat_buffer buffer;
  http::request<http::empty_body> req;
  boost::system::error_code ec;
  http::read(socket, buffer, req, ec);
  if (ec) return;
  http::response<http::string_body> res;
  res.version(req.version());
  res.set(http::field::server, "s3rdmafs");
  if (req.method() == http::verb::get && (req.target() == "/metrics" || req.target() == "/")) {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = render();
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain");
    res.body() = "try GET /metrics\n";
  }
  res.prepare_payload();
  res.keep_alive(false);
  http::write(socket, res, ec);
}

template <typename Protocol>
class Server final : public MetricsServer {
 public:
  Server(typename Protocol::endpoint ep, std::string where, std::function<std::string()> render)
      : acceptor_(io_, ep), where_(std::move(where)), render_(std::move(render)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Server() override {
    io_.stop();
    thread_.join();
  }
  std::string where() const override { return where_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, typename Protocol::socket s) {
      if (!ec) Answer(s, render_);
      Accept();
    });
  }
  asio::io_context io_;
  typename Protocol::acceptor acceptor_;
  std::string where_;
  std::function<std::string()> render_;
  std::thread thread_;
};

bool SplitHostPort(const std::string& listen, std::string* host, std::string* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) return false;
  *host = listen.substr(0, colon);
  *port = listen.substr(colon + 1);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  return port->find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                            std::function<std::string()> render,
                                                            const std::string& setting) {
  if (std::string why = config::CheckMetricsListen(listen); !why.empty())
    return MakeError(Errc::kConfig, setting + " '" + listen + "': " + why);
  try {
    if (listen.rfind("unix:", 0) == 0) {
      std::string path = listen.substr(5);
      unlink(path.c_str());  // a socket left by an earlier run
      return std::unique_ptr<MetricsServer>(new Server<asio::local::stream_protocol>(
          asio::local::stream_protocol::endpoint(path), listen, std::move(render)));
    }
    std::string host, port;
    SplitHostPort(listen, &host, &port);
    asio::ip::address addr =
        host == "localhost" ? asio::ip::make_address("127.0.0.1") : asio::ip::make_address(host);
    return std::unique_ptr<MetricsServer>(new Server<asio::ip::tcp>(
        asio::ip::tcp::endpoint(addr, static_cast<uint16_t>(std::stoi(port))), listen,
        std::move(render)));
  } catch (const std::exception& e) {
    return MakeError(Errc::kConfig, setting + " '" + listen + "': " + e.what());
  }
}

}  // namespace s3rdmafs::metrics
