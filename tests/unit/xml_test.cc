#include "s3rdmafs/s3/xml.h"

#include <gtest/gtest.h>

using namespace s3rdmafs;

TEST(Xml, ParsesListObjectsV2WithUrlEncoding) {
  auto page = s3::ParseListObjectsV2(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>dir%2F</Prefix><EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated><NextContinuationToken>tok+/=</NextContinuationToken>
  <Contents><Key>dir/a%20b.txt</Key><LastModified>2009-10-12T17:50:30.123Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>434234</Size></Contents>
  <CommonPrefixes><Prefix>dir/sub%2B/</Prefix></CommonPrefixes>
</ListBucketResult>)");
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "dir/a b.txt");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].etag, "\"abc\"");
  EXPECT_EQ(page->objects[0].mtime_ns, 1255369830123000000);
  ASSERT_EQ(page->common_prefixes.size(), 1u);
  EXPECT_EQ(page->common_prefixes[0], "dir/sub+/");
  EXPECT_EQ(page->next_token, "tok+/=");  // tokens are opaque: never decoded
}

TEST(Xml, RejectsBrokenDocuments) {
  EXPECT_FALSE(s3::ParseListObjectsV2("<ListBucketResult><Contents>"));
  EXPECT_FALSE(s3::ParseListObjectsV2("<Other/>"));
  EXPECT_FALSE(s3::ParseListObjectsV2(
      "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>"));
  EXPECT_FALSE(s3::ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"));
}

TEST(Xml, ParsesErrorBody) {
  auto e = s3::ParseErrorBody("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>");
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.message, "gone");
  EXPECT_EQ(s3::ParseErrorBody("not xml").code, "");
}

TEST(Xml, Dates) {
  int64_t ns;
  ASSERT_TRUE(s3::ParseHttpDate("Wed, 21 Oct 2015 07:28:00 GMT", &ns));
  EXPECT_EQ(ns, 1445412480000000000);
  ASSERT_TRUE(s3::ParseIso8601("2015-10-21T07:28:00Z", &ns));
  EXPECT_EQ(ns, 1445412480000000000);
  EXPECT_FALSE(s3::ParseIso8601("yesterday", &ns));
}
