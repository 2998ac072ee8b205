// Must not compile: the cache layer sits below fs and cannot see its headers.
// Built only by the layering.upward_include_fails test, which expects the
// compiler to say the header is not there.
#include "s3rdmafs/fs/filesystem.h"
