#!/usr/bin/env bash
# Builds one libFuzzer target with clang (AddressSanitizer with LeakSanitizer, UBSan) straight
# from the sources, when they changed, and runs it for a bounded time on a copy of its committed
# seed corpus (tests/fuzz/corpus/<target>/). Exits non-zero on any crash, leak, hang (an input
# taking over 10 s) or failed check; the input is kept as OUT_DIR/<target>-crash-<sha1> (or
# leak-, timeout-) and the whole log as OUT_DIR/fuzz_<target>.log.
#
#   bash tests/fuzz/run.sh TARGET [SECONDS] [OUT_DIR]
#
# TARGET: model_load, resource, notification or config. SECONDS: 60 when CI=true, else 30.
# OUT_DIR: build/fuzz. (pointer-overflow is left out: RapidJSON 1.1 offsets its empty stack's
# null pointer.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${1:?usage: run.sh TARGET [SECONDS] [OUT_DIR]}
shift
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
elif [ "${CI:-}" = true ]; then
  seconds=60
else
  seconds=30
fi
out=${1:-$root/build/fuzz}
mkdir -p "$out"

# Per target: sources, the headers they include from the project, libraries, flags, and the
# stack to run with (KB). A 1 MB stack (8 MB is usual) lets inputs within max_len show recursion
# that grows with the input's nesting, which 8 MB only shows once the input is a few MB; toml++
# recurses, to a depth of at most 256, through frames that ASan makes too large for 1 MB.
flags=()
stack_kb=1024
# toml++ is compiled in from its header (Debian also ships it as a library, which the adapter
# links) so that its parser is instrumented too, with its internal assertions off as in that
# release library: 3.3.0's parse_key asserts on table headers such as "[\x02]" that the parser
# then refuses with a parse error (fixed upstream in marzer/tomlplusplus#301). UBSan's
# `unreachable` check is off too: 3.3.0 reaches a __builtin_unreachable() on a line-ending
# backslash in a multi-line string followed by some non-ASCII characters (marzer/tomlplusplus#190
# and #295; the project itself has no __builtin_unreachable).
toml_flags=("-DTOML_ASSERT(expr)=static_assert(true)" -fno-sanitize=unreachable)
case "$target" in
  model_load)
    sources=("$root"/adapter/score/{model_load,model,binned,binned_avx512,shap,ubjson}.cpp)
    headers=("$root"/adapter/score/*.hpp)
    libs=(-lfmt)
    ;;
  resource)
    # The catalog comes from the shipped features.toml, read at start.
    sources=("$root"/fhir/{datetime,resources,bundle}.cpp "$root"/mapping/{pseudonym,units,rows,features}.cpp
             "$root"/adapter/config/{config,keys,feature_tables}.cpp)
    headers=("$root"/fhir/*.hpp "$root"/mapping/*.hpp "$root"/adapter/config/*.hpp)
    flags=("${toml_flags[@]}")
    libs=(-lfmt -lcrypto)
    ;;
  notification)
    # subscriptions.cpp also registers Subscriptions through fhir::Client: libcurl and spdlog,
    # linked as spdlog's CMake target does (compiled library, external fmt).
    sources=("$root"/fhir/{subscriptions,client,rate_gate,retry,bundle,datetime}.cpp)
    headers=("$root"/fhir/*.hpp)
    flags=(-DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL)
    libs=(-lspdlog -lfmt -lcurl -lpthread)
    ;;
  config)
    sources=("$root"/adapter/config/{config,keys,feature_tables}.cpp "$root"/mapping/{features,units}.cpp
             "$root"/fhir/datetime.cpp)
    headers=("$root"/adapter/config/*.hpp "$root"/mapping/*.hpp "$root"/fhir/*.hpp)
    flags=("${toml_flags[@]}")
    libs=(-lfmt)
    stack_kb=8192
    ;;
  *)
    echo "run.sh: unknown target '$target' (model_load, resource, notification, config)" >&2
    exit 2
    ;;
esac
harness="$root/tests/fuzz/fuzz_$target.cpp"
bin="$out/fuzz_$target"
if [ ! -x "$bin" ] || [ -n "$(find "${sources[@]}" "${headers[@]}" "$harness" "$0" -newer "$bin" 2>/dev/null)" ]; then
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-sanitize=pointer-overflow "${flags[@]}" -DFRA_SOURCE_DIR="\"$root\"" \
    -I"$root" "${sources[@]}" "$harness" "${libs[@]}" -o "$bin.$$.tmp"
  mv "$bin.$$.tmp" "$bin"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$root/tests/fuzz/corpus/$target"/* "$work/corpus"/
log="$out/fuzz_$target.log"
status=0
(
  ulimit -S -s "$stack_kb"
  FRA_FUZZ_WORKDIR="$work/files" exec "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/$target-" "$work/corpus"
) >"$log" 2>&1 || status=$?
grep -E "^(#[0-9]+\s+(DONE|INITED)|stat::number_of_executed_units|==|SUMMARY|ERROR|fuzz_$target:|artifact_prefix)" \
  "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz_$target failed (exit $status); log: $log"
  tail -n 60 "$log"
fi
exit "$status"
