#include "acl.h"

#include <array>
#include <set>

#include "xml_util.h"

namespace s3rdma::server {

using s3rdmafs::MakeS3Error;
using s3rdmafs::Result;

namespace {

constexpr const char* kAllUsers = "http://acs.amazonaws.com/groups/global/AllUsers";
constexpr const char* kAuthenticatedUsers =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

struct Named {
  const char* name;
  CannedAcl acl;
};
constexpr std::array<Named, 7> kNames{{{"private", CannedAcl::kPrivate},
                                       {"public-read", CannedAcl::kPublicRead},
                                       {"public-read-write", CannedAcl::kPublicReadWrite},
                                       {"authenticated-read", CannedAcl::kAuthenticatedRead},
                                       {"bucket-owner-read", CannedAcl::kPrivate},
                                       {"bucket-owner-full-control", CannedAcl::kPrivate},
                                       {"aws-exec-read", CannedAcl::kPrivate}}};

// The (grantee, permission) pairs beyond the owner's FULL_CONTROL.
using Grant = std::pair<std::string, std::string>;
std::set<Grant> GrantsOf(CannedAcl acl) {
  switch (acl) {
    case CannedAcl::kPublicRead:
      return {{kAllUsers, "READ"}};
    case CannedAcl::kPublicReadWrite:
      return {{kAllUsers, "READ"}, {kAllUsers, "WRITE"}};
    case CannedAcl::kAuthenticatedRead:
      return {{kAuthenticatedUsers, "READ"}};
    case CannedAcl::kPrivate:
      break;
  }
  return {};
}

void AppendGrant(pugi::xml_node list, const char* type, const std::string& who,
                 const char* permission) {
  auto grant = list.append_child("Grant");
  auto grantee = grant.append_child("Grantee");
  grantee.append_attribute("xmlns:xsi") = "http://www.w3.org/2001/XMLSchema-instance";
  grantee.append_attribute("xsi:type") = type;
  if (std::string(type) == "Group") {
    xml_util::Text(grantee, "URI", who);
  } else {
    xml_util::Text(grantee, "ID", who);
    xml_util::Text(grantee, "DisplayName", who);
  }
  xml_util::Text(grant, "Permission", permission);
}

constexpr const char* kGrantHeaders[] = {"x-amz-grant-read", "x-amz-grant-write",
                                         "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                                         "x-amz-grant-full-control"};

}  // namespace

bool NamesAcl(const Request& request) {
  if (request.HasHeader("x-amz-acl")) return true;
  for (const char* grant : kGrantHeaders)
    if (request.HasHeader(grant)) return true;
  return false;
}

Result<CannedAcl> RequestedAcl(const Request& request) {
  for (const char* grant : kGrantHeaders)
    if (request.HasHeader(grant))
      return MakeS3Error(501, "NotImplemented",
                         std::string(grant) + ": this server keeps canned ACLs only (x-amz-acl)");
  const std::string name = request.Header("x-amz-acl");
  if (name.empty()) return CannedAcl::kPrivate;
  for (const auto& n : kNames)
    if (name == n.name) return n.acl;
  return MakeS3Error(400, "InvalidArgument", "x-amz-acl '" + name + "' is not a canned ACL");
}

Result<CannedAcl> AclFromPolicy(const pugi::xml_node& policy) {
  if (!policy) return MakeS3Error(400, "MalformedACLError", "the body is no AccessControlPolicy");
  std::set<Grant> grants;
  for (auto grant : policy.child("AccessControlList").children("Grant")) {
    auto grantee = grant.child("Grantee");
    std::string permission = grant.child_value("Permission");
    std::string who = grantee.child("URI") ? grantee.child_value("URI") : grantee.child_value("ID");
    if (who == kOwnerId && permission == "FULL_CONTROL") continue;  // the owner's, always
    grants.emplace(who, permission);
  }
  for (CannedAcl acl : {CannedAcl::kPrivate, CannedAcl::kPublicRead, CannedAcl::kPublicReadWrite,
                        CannedAcl::kAuthenticatedRead})
    if (GrantsOf(acl) == grants) return acl;
  return MakeS3Error(501, "NotImplemented",
                     "this server keeps canned ACLs only: the grants must be those of private, "
                     "public-read, public-read-write or authenticated-read (owner '" +
                         std::string(kOwnerId) + "')");
}

std::string NameOf(CannedAcl acl) {
  for (const auto& n : kNames)
    if (n.acl == acl) return n.name;
  return "private";
}

CannedAcl StoredAcl(const std::string& name) {
  for (const auto& n : kNames)
    if (name == n.name) return n.acl;
  return CannedAcl::kPrivate;
}

bool AnonymousMayRead(CannedAcl acl) {
  return acl == CannedAcl::kPublicRead || acl == CannedAcl::kPublicReadWrite;
}

bool AnonymousMayWrite(CannedAcl acl) { return acl == CannedAcl::kPublicReadWrite; }

void AppendOwner(pugi::xml_node parent, const char* element) {
  auto owner = parent.append_child(element);
  xml_util::Text(owner, "ID", kOwnerId);
  xml_util::Text(owner, "DisplayName", kOwnerId);
}

void AppendGrants(pugi::xml_node policy, CannedAcl acl) {
  AppendOwner(policy);
  auto list = policy.append_child("AccessControlList");
  AppendGrant(list, "CanonicalUser", kOwnerId, "FULL_CONTROL");
  for (const auto& [who, permission] : GrantsOf(acl))
    AppendGrant(list, "Group", who, permission.c_str());
}

}  // namespace s3rdma::server
