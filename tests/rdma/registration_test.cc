// Real verbs: the cache arena registers on every RDMA device with the access
// the RDMA-S3 protocol needs. Without a device this skips and says so; in the
// Soft-RoCE guest (S3RDMAFS_REQUIRE_RDMA=1) a missing device is a failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "s3rdmafs/mem/arena.h"
#include "s3rdmafs/rdma/device.h"

using namespace s3rdmafs;

namespace {
bool HaveDevices() {
  auto d = rdma::ListDevices();
  if (d && !d->empty()) return true;
  if (std::getenv("S3RDMAFS_REQUIRE_RDMA")) {
    ADD_FAILURE() << "S3RDMAFS_REQUIRE_RDMA is set but no RDMA device was found";
    return false;
  }
  return false;
}
#define REQUIRE_RDMA()                                                                      \
  if (!HaveDevices()) {                                                                     \
    if (!std::getenv("S3RDMAFS_REQUIRE_RDMA"))                                              \
      GTEST_SKIP() << "no RDMA device on this host: this test runs in the Soft-RoCE guest " \
                      "(tests/rdma/run-in-guest.sh, part of scripts/test.sh)";              \
    return;                                                                                 \
  }
}  // namespace

TEST(RdmaDevices, ListsPortsAndGids) {
  REQUIRE_RDMA();
  auto devices = rdma::ListDevices();
  ASSERT_TRUE(devices);
  bool active_with_gid = false;
  for (auto& d : *devices)
    for (auto& p : d.ports)
      if (p.state == "ACTIVE" && !p.gids.empty()) active_with_gid = true;
  EXPECT_TRUE(active_with_gid);
}

// The DC target's source GID is chosen by its type, RoCE v2, and must be
// the one sysfs says is RoCE v2 and carries the guest's IPv4 address.
TEST(RdmaDevices, RoceV2GidIsChosenByItsType) {
  REQUIRE_RDMA();
  auto dev = rdma::Device::Open("");
  ASSERT_TRUE(dev) << dev.error().message;
  auto index = (*dev)->RoceV2Ipv4Gid(1);
  ASSERT_TRUE(index) << index.error().message;
  auto devices = rdma::ListDevices();
  ASSERT_TRUE(devices);
  std::string type;
  for (auto& d : *devices)
    if (d.name == (*dev)->name())
      for (auto& p : d.ports)
        for (auto& g : p.gids)
          if (g.index == *index) type = g.type;
  EXPECT_EQ(type, "RoCE v2") << "GID index " << *index;
  EXPECT_FALSE((*dev)->RoceV2Ipv4Gid(7)) << "a port that does not exist is an error";
}

TEST(RdmaRegistration, ArenaRegistersWithRemoteAccess) {
  REQUIRE_RDMA();
  auto arena = mem::Arena::Create(64ull << 20, true, true);
  ASSERT_TRUE(arena);
  auto dev = rdma::Device::Open("");
  ASSERT_TRUE(dev) << dev.error().message;
  auto reg = rdma::Registration::Register(**dev, (*arena)->base(), (*arena)->size());
  ASSERT_TRUE(reg) << reg.error().message;
  EXPECT_NE((*reg)->rkey(), 0u);
  EXPECT_EQ((*reg)->length(), 64ull << 20);
  // The memory stays usable by the cache while registered.
  memset((*arena)->base(), 0x5a, 4096);
  EXPECT_EQ(static_cast<unsigned char>((*arena)->base()[4095]), 0x5au);
}

TEST(RdmaRegistration, UnknownDeviceIsAClearError) {
  REQUIRE_RDMA();
  auto dev = rdma::Device::Open("no-such-device");
  ASSERT_FALSE(dev);
  EXPECT_NE(dev.error().message.find("no-such-device"), std::string::npos);
}

TEST(RdmaRegistration, MemlockAdviceNamesTheLimit) {
  std::string advice = rdma::MemlockAdvice(1ull << 30);
  EXPECT_NE(advice.find("RLIMIT_MEMLOCK"), std::string::npos);
  EXPECT_NE(advice.find("1048576 KiB"), std::string::npos);
  EXPECT_NE(advice.find("LimitMEMLOCK"), std::string::npos);
}
