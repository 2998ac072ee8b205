#include "s3rdmafs/meta/dir_record.h"

#include <gtest/gtest.h>

using namespace s3rdmafs;
using meta::DecodeDirRecord;
using meta::DirRecord;
using meta::EncodeDirRecord;

TEST(DirRecord, RoundTripsEveryFieldAndAwkwardNames) {
  DirRecord r;
  meta::RecordEntry a;
  a.etag = "d41d8cd98f00b204e9800998ecf8427e";
  a.size = 12345678901;
  a.posix.mode = 0100600;
  a.posix.uid = 1000;
  a.posix.gid = 0;
  a.posix.mtime_ns = 1'700'000'000'123'456'789;
  a.posix.ctime_ns = 1'700'000'001'000'000'000;
  a.posix.atime_ns = 1'900'000'000'000'000'007;
  r["plain.txt"] = a;
  meta::RecordEntry link;
  link.etag = "abc-3";
  link.size = 9;
  link.posix.mode = 0120777;  // no uid or gid stored
  link.link_target = "../a b\tc%d\n";
  r["tab\there, new\nline, 100% \x01"] = link;
  meta::RecordEntry dev;
  dev.posix.mode = 020644;
  dev.posix.rdev = 0x0501;
  r["tty"] = dev;
  auto back = DecodeDirRecord(EncodeDirRecord(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(back->at("tab\there, new\nline, 100% \x01").posix.uid.has_value());
  auto empty = DecodeDirRecord(EncodeDirRecord({}));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(DirRecord, MalformedRecordsNameWhatIsWrong) {
  const std::string head = "s3rdmafs-dir-record 1\n";
  const std::string good = "f\te\t1\t33188\t0\t0\t5\t5\t0\t\t7\n";
  ASSERT_TRUE(DecodeDirRecord(head + good));
  // A line from before atime_ns (10 fields) still reads: atime not stored.
  auto older = DecodeDirRecord(head + "f\te\t1\t33188\t0\t0\t5\t5\t0\t\n");
  ASSERT_TRUE(older) << older.error().message;
  EXPECT_EQ(older->at("f").posix.atime_ns, 0);
  EXPECT_EQ(DecodeDirRecord(head + good)->at("f").posix.atime_ns, 7);
  struct Case {
    std::string text, want;
  } cases[] = {
      {"", "first line"},
      {"s3rdmafs-dir-record 2\n" + good, "first line"},
      {head + "f\te\t1\t33188\t0\t0\t5\t5\t0\t", "line 2 is cut short"},
      {head + good + "f\te\t1\t33188\t0\t0\t5\t5\t0\n", "line 3: bad field count"},
      {head + "f\te\t1\t33188\t0\t0\t5\t5\t0\t\t7\t\n", "more than 11 fields"},
      {head + "f\te\t1\t33188\t0\t0\t5\t5\t0\t\tx\n", "bad atime_ns"},
      {head + "\te\t1\t33188\t0\t0\t5\t5\t0\t\n", "bad name"},
      {head + "f%4\te\t1\t33188\t0\t0\t5\t5\t0\t\n", "bad name"},
      {head + "f%zz\te\t1\t33188\t0\t0\t5\t5\t0\t\n", "bad name"},
      {head + "f\te\t-1\t33188\t0\t0\t5\t5\t0\t\n", "bad size"},
      {head + "f\te\t1\t33188x\t0\t0\t5\t5\t0\t\n", "bad mode"},
      {head + "f\te\t1\t33188\t\t0\t5\t5\t0\t\n", "bad uid or gid"},
      {head + "f\te\t1\t33188\t0\t0\t\t5\t0\t\n", "bad mtime_ns"},
      {head + "f\te\t1\t33188\t0\t0\t5\t5\t0\t%\n", "bad link_target"},
  };
  for (const auto& c : cases) {
    auto r = DecodeDirRecord(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.want), std::string::npos)
        << c.text << " -> " << r.error().message;
  }
}
