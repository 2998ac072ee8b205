// Canned ACLs: the one access model this single-owner server keeps.
//
// Every signed request is the owner's, so an ACL only says what an unsigned
// (anonymous) request may do: read an object whose own ACL is public-read or
// public-read-write, list a bucket whose ACL is one of those, and write or
// delete objects in a bucket that is public-read-write. Anything else an
// anonymous request asks is AccessDenied, except that a bucket which does
// not exist is NoSuchBucket, as on S3.
//
// A bucket's ACL is kept on its directory, an object's in its metadata
// (x-amz-acl, never sent back as a header); both are set by x-amz-acl at
// creation or by PUT ?acl, which takes a canned name or an
// AccessControlPolicy whose grants are those of a canned ACL. Grants to
// other users are NotImplemented: there are no other users.
#pragma once

#include <pugixml.hpp>
#include <string>

#include "exchange.h"
#include "s3rdmafs/common/result.h"

namespace s3rdma::server {

inline constexpr const char* kOwnerId = "s3rdma";  // ID and DisplayName of the one owner

enum class CannedAcl { kPrivate, kPublicRead, kPublicReadWrite, kAuthenticatedRead };

// x-amz-acl of a request ("" or absent: private). The bucket-owner-* names
// are private here (the bucket's owner is every object's); x-amz-grant-*
// headers are NotImplemented; any other name is InvalidArgument.
s3rdmafs::Result<CannedAcl> RequestedAcl(const Request& request);
// Whether the request names an ACL in its headers (x-amz-acl or x-amz-grant-*).
bool NamesAcl(const Request& request);
// The body of PUT ?acl, when its grants are those of a canned ACL.
s3rdmafs::Result<CannedAcl> AclFromPolicy(const pugi::xml_node& access_control_policy);

// How a canned ACL is stored, and read back ("" or unknown: private).
std::string NameOf(CannedAcl acl);
CannedAcl StoredAcl(const std::string& name);

bool AnonymousMayRead(CannedAcl acl);
bool AnonymousMayWrite(CannedAcl acl);

// <Owner><ID/><DisplayName/></Owner> (or another element name) under `parent`.
void AppendOwner(pugi::xml_node parent, const char* element = "Owner");
// The Owner and AccessControlList of a GET ?acl answer, under `policy`.
void AppendGrants(pugi::xml_node policy, CannedAcl acl);

}  // namespace s3rdma::server
