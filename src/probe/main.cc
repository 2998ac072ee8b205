// s3rdmafs-probe: what RDMA can do on this machine.
//   s3rdmafs-probe devices                  devices, ports, GIDs, link layer, DC support, memlock
//   s3rdmafs-probe register [--size 64M]    register an arena of that size on every device
//   s3rdmafs-probe check --endpoint URL --bucket B [--key K] [--rdma ADDR:PORT]
//                                           HTTP reachability, RDMA connect, one RDMA GET (vs HTTP)
// Exit status: 0 when every step asked for worked, 1 otherwise, 2 on usage errors.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>

#include "s3rdmafs/common/size_parse.h"
#include "s3rdmafs/mem/arena.h"
#include "s3rdmafs/rdma/device.h"
#include "s3rdmafs/rdma/rc_connection.h"
#include "s3rdmafs/s3/credentials.h"
#include "s3rdmafs/s3/s3_client.h"

using namespace s3rdmafs;

namespace {

int Devices() {
  auto devices = rdma::ListDevices();
  if (!devices) {
    printf("devices: FAIL %s\n", devices.error().message.c_str());
    return 1;
  }
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY)
    printf("memlock: unlimited\n");
  else
    printf("memlock: %llu KiB\n", static_cast<unsigned long long>(rl.rlim_cur >> 10));
  if (devices->empty()) {
    printf("devices: none (no RDMA device in this kernel; s3rdmafs will use HTTP)\n");
    return 0;
  }
  for (auto& d : *devices) {
    printf("device %s guid %s dc %s\n", d.name.c_str(), d.node_guid.c_str(),
           d.dc_supported ? "supported (a DC target was made; untested on hardware by this project)"
                          : "not supported (RC only)");
    for (auto& p : d.ports) {
      printf("  port %d %s link %s mtu %d lid %u\n", p.port, p.state.c_str(), p.link_layer.c_str(),
             p.active_mtu, p.lid);
      for (auto& g : p.gids) printf("    gid[%d] %s %s\n", g.index, g.gid.c_str(), g.type.c_str());
    }
  }
  return 0;
}

int RegisterArena(const std::string& size_text) {
  auto size = ParseSize(size_text);
  if (!size) {
    fprintf(stderr, "s3rdmafs-probe: %s\n", size.error().message.c_str());
    return 2;
  }
  auto devices = rdma::ListDevices();
  if (!devices || devices->empty()) {
    printf("register: FAIL no RDMA device\n");
    return 1;
  }
  auto arena = mem::Arena::Create(*size, true, false);
  if (!arena) {
    printf("register: FAIL %s\n", arena.error().message.c_str());
    return 1;
  }
  int rc = 0;
  for (auto& d : *devices) {
    auto dev = rdma::Device::Open(d.name);
    if (!dev) {
      printf("register %s: FAIL %s\n", d.name.c_str(), dev.error().message.c_str());
      rc = 1;
      continue;
    }
    auto reg = rdma::Registration::Register(**dev, (*arena)->base(), (*arena)->size());
    if (!reg) {
      printf("register %s: FAIL %s\n", d.name.c_str(), reg.error().message.c_str());
      rc = 1;
      continue;
    }
    printf("register %s: OK %llu MiB (%s pages) rkey 0x%08x\n", d.name.c_str(),
           static_cast<unsigned long long>(*size >> 20), (*arena)->backing(), (*reg)->rkey());
  }
  return rc;
}

// End-to-end check against an endpoint, one verdict per step.
int Check(const std::string& endpoint, const std::string& bucket, std::string key,
          const std::string& rdma_ep) {
  s3::CredentialSources src;
  src.getenv = [](const char* n) { return std::getenv(n); };
  auto creds = s3::ResolveCredentials(src);
  if (!creds) {
    printf("credentials: FAIL %s\n", creds.error().message.c_str());
    return 1;
  }
  printf("credentials: OK from %s\n", creds->source.c_str());
  s3::CurlEngine engine{s3::CurlEngine::Options{}};
  s3::S3ClientOptions o;
  o.endpoint = endpoint;
  o.bucket = bucket;
  o.credentials = creds->credentials;
  o.max_retries = 1;
  auto client = s3::S3Client::Create(o, &engine);
  if (!client) {
    printf("http: FAIL %s\n", client.error().message.c_str());
    return 1;
  }
  s3::ListRequest lr;
  lr.max_keys = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto page = (*client)->List(lr);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!page) {
    printf("http: FAIL %s\n", page.error().ToString().c_str());
    return 1;
  }
  printf("http: OK list of bucket '%s' in %lld ms\n", bucket.c_str(), static_cast<long long>(ms));
  if (rdma_ep.empty()) return 0;
  size_t colon = rdma_ep.rfind(':');
  if (colon == std::string::npos) {
    printf("rdma connect: FAIL --rdma takes ADDR:PORT\n");
    return 1;
  }
  auto arena = mem::Arena::Create(16 << 20, true, true);
  if (!arena) {
    printf("rdma connect: FAIL %s\n", arena.error().message.c_str());
    return 1;
  }
  s3::S3Client* c = client->get();
  auto conn = rdma::RcConnection::Connect(
      rdma_ep.substr(0, colon), static_cast<uint16_t>(std::stoi(rdma_ep.substr(colon + 1))),
      (*arena)->base(), 16 << 20, [c](const std::string& body) -> Result<rdma::Handshake> {
        auto r = c->RdmaConnect(body);
        if (!r) return tl::unexpected(r.error());
        return rdma::ParseHandshakeReply(*r);
      });
  if (!conn) {
    printf("rdma connect: FAIL %s\n", conn.error().message.c_str());
    return 1;
  }
  printf("rdma connect: OK %s\n", (*conn)->Describe().c_str());
  if (key.empty()) {
    if (page->objects.empty()) {
      printf("rdma get: SKIPPED bucket is empty; give --key\n");
      return 0;
    }
    key = page->objects[0].key;
  }
  auto head = (*client)->Head(key);
  if (!head) {
    printf("rdma get: FAIL HEAD %s: %s\n", key.c_str(), head.error().ToString().c_str());
    return 1;
  }
  uint64_t n = std::min<uint64_t>(head->size, 8 << 20);
  if (n == 0) {
    printf("rdma get: SKIPPED '%s' is empty\n", key.c_str());
    return 0;
  }
  auto window = (*conn)->Open((*arena)->base(), n, rdma::Access::kServerWrites);
  if (!window) {
    printf("rdma get: FAIL %s\n", window.error().ToString().c_str());
    return 1;
  }
  std::promise<Result<s3::RdmaReply>> p;
  auto f = p.get_future();
  c->GetRdmaAsync(key, 0, std::span<std::byte>(reinterpret_cast<std::byte*>((*arena)->base()), n),
                  head->etag, window->token, [&p](auto r) { p.set_value(std::move(r)); });
  auto r = f.get();
  (*conn)->Close(*window);
  if (!r || r->declined) {
    printf("rdma get: FAIL %s\n",
           !r ? r.error().ToString().c_str() : ("declined: " + r->why).c_str());
    return 1;
  }
  // Compare with the same range over HTTP.
  std::vector<std::byte> http(n);
  s3::GetRequest g;
  g.key = key;
  g.length = n;
  g.into = {http};
  auto hr = (*client)->Get(g);
  bool same = hr && memcmp(http.data(), (*arena)->base(), n) == 0;
  printf("rdma get: %s %llu bytes of '%s' by RDMA WRITE%s\n", same ? "OK" : "FAIL",
         static_cast<unsigned long long>(n), key.c_str(),
         same ? ", identical to HTTP" : ", DIFFERENT from HTTP");
  return same ? 0 : 1;
}

}  // namespace

static int Main(int argc, char** argv) {
  CLI::App app{"s3rdmafs-probe: RDMA devices and capabilities for s3rdmafs"};
  app.require_subcommand(1);
  app.add_subcommand("devices", "list RDMA devices, ports, GIDs, DC support and the memlock limit");
  std::string size = "64M";
  auto* reg =
      app.add_subcommand("register", "register an arena on every device, as the daemon will");
  reg->add_option("--size", size, "arena size (default 64M)");
  std::string endpoint, bucket, key, rdma_ep;
  auto* check =
      app.add_subcommand("check", "end to end: HTTP reachability, RDMA connect, one RDMA GET");
  check->add_option("--endpoint", endpoint, "S3 endpoint URL")->required();
  check->add_option("--bucket", bucket, "bucket")->required();
  check->add_option("--key", key, "object for the RDMA GET (default: the first key)");
  check->add_option("--rdma", rdma_ep, "ADDR:PORT of the server's RDMA listener");
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("devices")) return Devices();
  if (app.got_subcommand("check")) return Check(endpoint, bucket, key, rdma_ep);
  return RegisterArena(size);
}

// Whatever is thrown past Main would abort (exit 134, no message): say what
// it was instead.
int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "s3rdmafs-probe: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "s3rdmafs-probe: unexpected error\n");
  }
  return 1;
}
