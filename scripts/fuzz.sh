#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, with ASan+UBSan) and runs each for a
# bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
OUT=build-fuzz
mkdir -p "$OUT"
# Every layer's include root (the fuzz targets are not a layering check).
INCLUDES=$(for d in include/*/; do printf -- '-I%s ' "${d%/}"; done)
CXX="clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined $INCLUDES -Isrc/server"
TOMLPP=$(pkg-config --cflags --libs tomlplusplus)
build() {  # name, sources..., then libs after --
  local name=$1; shift
  local srcs=() libs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do srcs+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift && libs=("$@")
  [ "$OUT/$name" -nt "tests/fuzz/$name.cc" ] && return 0
  $CXX "tests/fuzz/$name.cc" "${srcs[@]}" -o "$OUT/$name" "${libs[@]}"
}
build token_fuzz src/protocol/token.cc src/common/result.cc
build xml_fuzz src/s3/xml.cc src/s3/sigv4.cc src/common/result.cc -- -lpugixml -lcrypto
build sigv4_fuzz src/s3/sigv4.cc -- -lcrypto
build config_fuzz src/config/config.cc src/config/fields.cc src/common/result.cc src/common/log.cc \
  src/common/size_parse.cc -- $TOMLPP
build range_fuzz src/server/range.cc
build aws_chunked_fuzz src/server/aws_chunked.cc src/s3/sigv4.cc -- -lcrypto
for t in token_fuzz xml_fuzz sigv4_fuzz config_fuzz range_fuzz aws_chunked_fuzz; do
  mkdir -p "$OUT/corpus-$t"
  [ -d "tests/fuzz/seeds/$t" ] && cp -n tests/fuzz/seeds/$t/* "$OUT/corpus-$t/" 2>/dev/null || true
  echo "== fuzz $t for ${SECS}s"
  "$OUT/$t" -max_total_time="$SECS" -max_len=4096 -print_final_stats=0 "$OUT/corpus-$t" 2>&1 | tail -2
done
echo "fuzz: all targets ran ${SECS}s without a crash"
