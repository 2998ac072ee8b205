#include "s3rdmafs/meta/inode_table.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using namespace s3rdmafs;
using meta::InodeTable;
using std::chrono::milliseconds;

namespace {
s3::ObjectInfo Obj(const std::string& etag) {
  s3::ObjectInfo o;
  o.etag = etag;
  o.size = 1;
  return o;
}
const auto kNothingOpen = [](uint64_t) { return false; };
}  // namespace

TEST(InodeTable, SubtreesAreWalkedAndRenamedWithoutTheRestOfTheTable) {
  InodeTable t("", {});
  uint64_t a = t.UpsertDir(meta::kRootIno, "a");
  uint64_t b = t.UpsertDir(a, "b");
  uint64_t f = t.UpsertFile(b, "f", Obj("1"));
  uint64_t g = t.UpsertFile(a, "g", Obj("1"));
  t.UpsertFile(meta::kRootIno, "a-sibling", Obj("1"));  // shares the prefix, not the subtree
  std::set<uint64_t> under;
  for (auto& v : t.Under(a)) under.insert(v.ino);
  EXPECT_EQ(under, (std::set<uint64_t>{b, f, g}));
  EXPECT_EQ(t.Children(a).size(), 2u);
  t.Rename(meta::kRootIno, "a", meta::kRootIno, "z");
  EXPECT_EQ(t.Get(f)->key, "z/b/f");
  EXPECT_EQ(t.Get(g)->key, "z/g");
  EXPECT_EQ(t.Get(t.FreshChild(meta::kRootIno, "a-sibling")->ino)->key, "a-sibling");
}

TEST(InodeTable, SweepDropsWhatTheKernelDoesNotHoldAndNamesWhatItDoes) {
  InodeTable t("", {});
  uint64_t held = t.UpsertFile(meta::kRootIno, "held", Obj("1"));
  t.IncLookup(held);
  uint64_t listed = t.UpsertFile(meta::kRootIno, "listed", Obj("1"));  // no reference
  uint64_t open = t.UpsertFile(meta::kRootIno, "open", Obj("1"));
  t.IncLookup(open);
  uint64_t dirty = t.UpsertFile(meta::kRootIno, "dirty", Obj("1"));
  t.IncLookup(dirty);
  t.SetLocal(dirty, true);
  auto none = t.Sweep(milliseconds(60000), 1000, 100, kNothingOpen);
  EXPECT_TRUE(none.forget.empty() && none.dropped == 0) << "nothing is idle yet";
  std::this_thread::sleep_for(milliseconds(30));
  auto r = t.Sweep(milliseconds(10), 1000, 100, [open](uint64_t ino) { return ino == open; });
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_FALSE(t.Get(listed));
  ASSERT_EQ(r.forget.size(), 1u) << "open and unsaved inodes are never cold";
  EXPECT_EQ(r.forget[0].second, "held");
  EXPECT_TRUE(t.Get(held)) << "kept until the kernel's FORGET";
  t.Forget(held, 1);
  EXPECT_FALSE(t.Get(held));
  EXPECT_EQ(t.size(), 3u);  // root, open, dirty
  auto again = t.Sweep(milliseconds(10), 1000, 100, kNothingOpen);
  EXPECT_TRUE(again.forget.empty())
      << "a name asked for counts as touched: not asked again at once";
}

TEST(InodeTable, PastTheBoundTheColdestGoFirst) {
  InodeTable t("", {});
  std::vector<uint64_t> inos;
  for (int i = 0; i < 10; ++i) {
    inos.push_back(t.UpsertFile(meta::kRootIno, "f" + std::to_string(i), Obj("1")));
    t.IncLookup(inos.back());
  }
  t.Get(inos[0]);  // a use: now the warmest
  auto r = t.Sweep(milliseconds(60000), 5, 3, kNothingOpen);
  ASSERT_EQ(r.forget.size(), 3u) << "at most `limit` names per pass";
  EXPECT_EQ(r.forget[0].second, "f1");
  EXPECT_EQ(r.forget[2].second, "f3");
  for (auto& [parent, name] : r.forget) t.Forget(t.FreshChild(parent, name)->ino, 1);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_TRUE(t.Get(inos[0]));
}
