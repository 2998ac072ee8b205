// Must compile: fs sits above the cache layer (the control for the test
// next to it, so that one fails for the right reason only).
#include "s3rdmafs/cache/block_cache.h"
