#include "s3rdmafs/protocol/token.h"

#include <gtest/gtest.h>

#include <random>

using namespace s3rdmafs::rdma;

// Worked by hand: a 1 MiB window at 0x7f0000200000, rkey 0x1234abcd, RoCE
// (lid 0), DCT number 0x00a1b2, GID ::ffff:192.168.1.10.
TEST(Token, DcBareHandWorkedExample) {
  DcToken t;
  t.addr = 0x7f0000200000;
  t.size = 0x100000;
  t.rkey = 0x1234abcd;
  t.lid = 0;
  t.dctn = 0xa1b2;
  t.gid_present = true;
  t.gid = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 10};
  std::string s = FormatToken(t);
  EXPECT_EQ(s, "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a");
  EXPECT_EQ(s.size(), 81u);
  auto back = ParseToken(s);
  ASSERT_TRUE(back);
  auto& d = std::get<DcToken>(*back);
  EXPECT_EQ(d.addr, t.addr);
  EXPECT_EQ(d.size, t.size);
  EXPECT_EQ(d.rkey, t.rkey);
  EXPECT_EQ(d.dctn, t.dctn);
  EXPECT_EQ(d.gid, t.gid);
  EXPECT_FALSE(d.suffixed);
}

TEST(Token, DcSuffixedTakesTheWindowFromTheSuffix) {
  std::string s =
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a"
      ":00007f0000300000:0000000000002000";
  EXPECT_EQ(s.size(), 115u);
  auto t = ParseToken(s);
  ASSERT_TRUE(t);
  auto& d = std::get<DcToken>(*t);
  EXPECT_TRUE(d.suffixed);
  EXPECT_EQ(d.addr, 0x7f0000300000u);
  EXPECT_EQ(d.size, 0x2000u);
  d.addr = 0x7f0000200000;
  d.size = 0x100000;
  EXPECT_EQ(FormatToken(d),
            "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a"
            ":00007f0000200000:0000000000100000");
}

TEST(Token, RcRoundTrip) {
  RcToken t{0x1122334455667788, 0x7fffdeadb000, 0x400000, 0xcafe};
  std::string s = FormatToken(t);
  EXPECT_EQ(s, "rc1:1122334455667788:00007fffdeadb000:00400000:0000cafe");
  EXPECT_EQ(s.size(), 55u);
  auto back = ParseToken(s);
  ASSERT_TRUE(back);
  auto& r = std::get<RcToken>(*back);
  EXPECT_EQ(r.connection, t.connection);
  EXPECT_EQ(r.addr, t.addr);
  EXPECT_EQ(r.size, t.size);
  EXPECT_EQ(r.rkey, t.rkey);
}

TEST(Token, MalformedInputsAreRejected) {
  const char* bad[] = {
      "",
      "rc1",
      "rc2:1122334455667788:00007fffdeadb000:00400000:0000cafe",
      "rc1:1122334455667788:00007fffdeadb000:00000000:0000cafe",  // empty window
      "rc1:112233445566778:00007fffdeadb000:00400000:0000cafe",   // short field
      "rc1:1122334455667788:00007fffdeadb000:00400000:0000cafg",  // not hex
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1",         // 6 fields
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:2:00000000000000000000ffffc0a8010a",
      "00007f0000200000:00000000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a",
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010",
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a:00",
      "00007f0000200000 00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a",
  };
  for (const char* b : bad) {
    auto t = ParseToken(b);
    EXPECT_FALSE(t) << b;
    if (!t) {
      EXPECT_EQ(t.error().code, s3rdmafs::Errc::kInvalidArgument);
    }
  }
}

// Fuzz-style: mutations of valid tokens never crash, and whatever parses
// formats back to an equivalent token.
TEST(Token, RandomMutationsNeverCrash) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string seeds[] = {
      "rc1:1122334455667788:00007fffdeadb000:00400000:0000cafe",
      "00007f0000200000:00100000:1234abcd:0000:00a1b2:1:00000000000000000000ffffc0a8010a"};
  const char alphabet[] = "0123456789abcdefABCDEF:rcx\x01\xff";
  for (int i = 0; i < 100000; ++i) {
    std::string s = seeds[rng() % 2];
    for (int m = 1 + rng() % 4; m > 0; --m) {
      size_t pos = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0:
          if (pos < s.size()) s[pos] = alphabet[rng() % (sizeof alphabet - 1)];
          break;
        case 1:
          if (pos < s.size()) s.erase(pos, 1);
          break;
        default:
          s.insert(pos, 1, alphabet[rng() % (sizeof alphabet - 1)]);
      }
    }
    auto t = ParseToken(s);
    if (!t) continue;
    std::string again = std::visit([](auto& x) { return FormatToken(x); }, *t);
    auto t2 = ParseToken(again);
    ASSERT_TRUE(t2) << s;
    ASSERT_EQ(std::visit([](auto& x) { return FormatToken(x); }, *t2), again);
  }
}

// The codec walks one field table both ways: whatever it writes, it reads
// back as the same token, in both DC forms.
TEST(Token, DcFormatThenParseIsTheIdentity) {
  std::mt19937_64 rng(13);
  for (int i = 0; i < 2000; ++i) {
    DcToken t;
    t.addr = rng();
    t.suffixed = i % 2 == 1;
    t.size = t.suffixed ? (rng() | 1) : (rng() & 0xffffffffu) | 1;
    t.rkey = static_cast<uint32_t>(rng());
    t.lid = static_cast<uint16_t>(rng());
    t.dctn = static_cast<uint32_t>(rng() & 0xffffff);
    t.gid_present = rng() & 1;
    for (auto& b : t.gid) b = static_cast<uint8_t>(rng());
    const std::string s = FormatToken(t);
    EXPECT_EQ(s.size(), t.suffixed ? 115u : 81u);
    auto back = ParseToken(s);
    ASSERT_TRUE(back) << s << ": " << back.error().message;
    const auto& d = std::get<DcToken>(*back);
    EXPECT_EQ(d.addr, t.addr);
    EXPECT_EQ(d.size, t.size);
    EXPECT_EQ(d.rkey, t.rkey);
    EXPECT_EQ(d.lid, t.lid);
    EXPECT_EQ(d.dctn, t.dctn);
    EXPECT_EQ(d.gid_present, t.gid_present);
    EXPECT_EQ(d.gid, t.gid);
    EXPECT_EQ(d.suffixed, t.suffixed);
    EXPECT_EQ(FormatToken(d), s);
  }
}
