#include "http_session.h"

#include <sys/sendfile.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "s3rdmafs/common/log.h"

namespace s3rdma::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class BeastExchange final : public Exchange {
 public:
  BeastExchange(tcp::socket& sock, beast::flat_buffer& buf,
                http::request_parser<http::buffer_body>& parser)
      : sock_(sock), buf_(buf), parser_(parser) {
    auto& h = parser_.get();
    req_.method = std::string(h.method_string());
    req_.target = std::string(h.target());
    size_t q = req_.target.find('?');
    req_.path = req_.target.substr(0, q);
    if (q != std::string::npos) req_.raw_query = req_.target.substr(q + 1);
    for (auto& f : h)
      req_.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    keep_alive_ = h.keep_alive();
  }

  const Request& request() const override { return req_; }
  bool keep_alive() const { return keep_alive_ && parser_.is_done() && !broken_; }

  // An answer before the body was read (a refused PUT): a small body is read
  // and dropped so the connection stays usable, as S3 keeps it; a large one,
  // or one the client waits to send (100-continue), costs the connection.
  void DrainRefusedBody() {
    constexpr uint64_t kDrainMax = 8u << 20;
    if (parser_.is_done() || broken_ || beast::iequals(req_.Header("expect"), "100-continue"))
      return;
    auto length = parser_.content_length();
    if (!length || *length > kDrainMax) return;
    ReadBody([](const char*, size_t) { return true; });
  }

  bool ReadBody(const std::function<bool(const char*, size_t)>& sink) override {
    static thread_local std::vector<char> chunk(1 << 20);
    for (;;) {
      long got = ReadSome(chunk.data(), chunk.size());
      if (got < 0) return false;
      if (got == 0) return true;
      if (!sink(chunk.data(), static_cast<size_t>(got))) return broken_ = true, false;
    }
  }

  long ReadSome(char* into, size_t cap) override {
    if (broken_) return -1;
    if (!continued_ && beast::iequals(req_.Header("expect"), "100-continue")) {
      continued_ = true;
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::error_code ec;
      net::write(sock_, net::buffer(kContinue, sizeof kContinue - 1), ec);
      if (ec) return broken_ = true, -1;
    }
    while (!parser_.is_done()) {
      parser_.get().body().data = into;
      parser_.get().body().size = cap;
      beast::error_code ec;
      http::read(sock_, buf_, parser_, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        LOG_WARN("%s %s: reading the body failed: %s", req_.method.c_str(), req_.target.c_str(),
                 ec.message().c_str());
        return broken_ = true, -1;
      }
      size_t got = cap - parser_.get().body().size;
      if (got) return static_cast<long>(got);
    }
    return 0;
  }

  void Send(int status, const Headers& headers, std::string_view body) override {
    DrainRefusedBody();
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    for (auto& [k, v] : headers) res.set(k, v);
    res.body() = std::string(body);
    res.keep_alive(keep_alive());
    res.prepare_payload();
    beast::error_code ec;
    http::write(sock_, res, ec);
    if (ec) broken_ = true;
  }

  void SendHeadersOnly(int status, const Headers& headers, uint64_t content_length) override {
    http::response<http::empty_body> res{static_cast<http::status>(status), 11};
    for (auto& [k, v] : headers) res.set(k, v);
    res.keep_alive(keep_alive());
    if (status != 304) res.content_length(content_length);
    http::response_serializer<http::empty_body> sr{res};
    sr.split(true);
    beast::error_code ec;
    http::write_header(sock_, sr, ec);
    if (ec) broken_ = true;
  }

  void SendFile(int status, const Headers& headers, int fd, uint64_t offset,
                uint64_t length) override {
    SendHeadersOnly(status, headers, length);
    off_t off = static_cast<off_t>(offset);
    uint64_t left = length;
    while (!broken_ && left > 0) {
      ssize_t n = sendfile(sock_.native_handle(), fd, &off, std::min<uint64_t>(left, 1u << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // client gone, or the file shrank under us: the connection is unusable
        broken_ = true;
        break;
      }
      left -= static_cast<uint64_t>(n);
    }
  }

  void BeginBody(int status, const Headers& headers, uint64_t content_length) override {
    SendHeadersOnly(status, headers, content_length);
  }

  bool SendBodyPart(const char* data, size_t n) override {
    if (broken_) return false;
    beast::error_code ec;
    net::write(sock_, net::buffer(data, n), ec);
    if (ec) broken_ = true;
    return !broken_;
  }

  void Abandon() override { broken_ = true; }

  bool broken() const { return broken_; }

 private:
  tcp::socket& sock_;
  beast::flat_buffer& buf_;
  http::request_parser<http::buffer_body>& parser_;
  Request req_;
  bool keep_alive_ = true;
  bool broken_ = false;
  bool continued_ = false;  // "100 Continue" sent
};

// A request whose header cannot be parsed cannot be framed either: it gets
// S3's error document, and the connection closes (where its body ends is
// unknown).
void RefuseUnframed(tcp::socket& sock, const beast::error_code& why) {
  const char* code = "BadRequest";
  if (why == http::error::bad_content_length)
    code = "InvalidArgument";
  else if (why == http::error::header_limit)
    code = "RequestHeaderSectionTooLarge";
  else if (why == http::error::body_limit)
    code = "EntityTooLarge";
  http::response<http::string_body> res{http::status::bad_request, 11};
  res.set(http::field::content_type, "application/xml");
  res.set(http::field::connection, "close");
  res.set(http::field::server, "s3rdma-server");
  res.body() = std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>") + code +
               "</Code><Message>The request cannot be read: " + why.message() +
               "</Message></Error>";
  res.prepare_payload();
  beast::error_code ignored;
  http::write(sock, res, ignored);
}

void ServeConnection(tcp::socket sock, S3Handler* handler) {
  beast::flat_buffer buf;
  boost::system::error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(std::uint64_t{5} << 40);  // S3 objects are at most 5 TiB
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    http::read_header(sock, buf, parser, ec);
    // need_buffer: body bytes arrived with the header; ReadBody takes them.
    if (ec == http::error::need_buffer && parser.is_header_done()) ec = {};
    if (ec) {
      if (ec != http::error::end_of_stream && ec != net::error::eof &&
          ec != net::error::connection_reset) {
        LOG_WARN("bad request header: %s", ec.message().c_str());
        RefuseUnframed(sock, ec);
      }
      break;
    }
    BeastExchange ex(sock, buf, parser);
    try {
      handler->Handle(ex);
    } catch (const std::exception& e) {
      LOG_ERROR("%s %s: %s", ex.request().method.c_str(), ex.request().target.c_str(), e.what());
      break;
    }
    if (!ex.keep_alive()) break;
  }
  sock.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

std::string RunHttpServer(const std::string& listen, uint16_t port, unsigned max_connections,
                          S3Handler* handler, const std::function<void(uint16_t)>& on_listening) {
  net::io_context io;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(listen, ec);
  if (ec) return "bad listen address '" + listen + "': " + ec.message();
  tcp::acceptor acceptor(io);
  tcp::endpoint ep(addr, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + listen + ":" + std::to_string(port) + ": " + ec.message();
  on_listening(acceptor.local_endpoint().port());
  static std::atomic<unsigned> active{0};
  for (;;) {
    tcp::socket sock(io);
    acceptor.accept(sock, ec);
    if (ec) continue;
    if (active.load() >= max_connections) {  // shed load rather than exhaust threads
      sock.close(ec);
      continue;
    }
    ++active;
    std::thread([s = std::move(sock), handler]() mutable {
      ServeConnection(std::move(s), handler);
      --active;
    }).detach();
  }
}

}  // namespace s3rdma::server
