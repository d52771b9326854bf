#!/usr/bin/env bash
# Builds the model-loader fuzzer with clang (libFuzzer, AddressSanitizer, UBSan) and runs it
# for a bounded time on a copy of the committed seed corpus. Exits non-zero on any finding.
# (pointer-overflow is left out: RapidJSON 1.1 offsets its empty stack's null pointer.)
#
#   bash tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
seconds=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${2:-$root/build/fuzz}
mkdir -p "$out"

bin="$out/fuzz_model_load"
sources=("$root"/adapter/score/{model_load,model,shap,ubjson}.cpp "$root/tests/fuzz/fuzz_model_load.cpp")
if [ ! -x "$bin" ] || [ -n "$(find "${sources[@]}" "$root"/adapter/score/*.hpp -newer "$bin" 2>/dev/null)" ]; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-sanitize=pointer-overflow \
    -I"$root" "${sources[@]}" -lfmt -o "$bin"
fi

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp "$root"/tests/fuzz/corpus/model_load/* "$corpus"/
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
  "$corpus" 2>&1 | grep -E "^(#[0-9]+\s+(DONE|INITED)|stat::number_of_executed_units|==|SUMMARY|ERROR)" || true
exit "${PIPESTATUS[0]}"
