#!/usr/bin/env bash
# Builds an OpenBLAS that exports cblas_sbgemm (BUILD_BFLOAT16=1) from Debian's own source tarball, for
# `bf16_matmul: sbgemm` / `auto` through SFTDECK_SBGEMM_LIBRARY (Debian's libopenblas0 is built without it).
# Only the library is built (no LAPACK, no Fortran): about 6 minutes on 2 cores.
#
#   Scripts/build-openblas-bf16.sh [OUT_DIR] [TARGET]
#   SFTDECK_SBGEMM_LIBRARY=OUT_DIR/libopenblas_sbgemm.so sftdeck train --config F ...
#
# TARGET defaults to SAPPHIRERAPIDS where /proc/cpuinfo lists amx_bf16, COOPERLAKE where it lists
# avx512_bf16 (OpenBLAS's bf16 kernels), else HASWELL (the generic bf16 kernel: right numbers, slow;
# useful to check the native path, as the tests do when the variable is set).
set -euo pipefail
out=${1:-$HOME/.cache/sftdeck/openblas-bf16}
if [[ -n ${2:-} ]]; then target=$2
elif grep -qw amx_bf16 /proc/cpuinfo; then target=SAPPHIRERAPIDS
elif grep -qw avx512_bf16 /proc/cpuinfo; then target=COOPERLAKE
else target=HASWELL; fi
version=0.3.21+ds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL "http://deb.debian.org/debian/pool/main/o/openblas/openblas_${version}.orig.tar.xz" -o "$work/src.tar.xz"
mkdir "$work/src" && tar xf "$work/src.tar.xz" -C "$work/src" --strip-components=1
make -C "$work/src" -j"$(nproc)" TARGET="$target" BUILD_BFLOAT16=1 NO_LAPACK=1 NOFORTRAN=1 ONLY_CBLAS=1 \
    NO_STATIC=1 USE_OPENMP=0 NUM_THREADS=64 LIBNAMESUFFIX=sbgemm >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log"; exit 1; }
mkdir -p "$out"
cp -L "$work/src/libopenblas_sbgemm.so" "$out/libopenblas_sbgemm.so"
symbols=$(nm -D "$out/libopenblas_sbgemm.so")   # not piped into grep -q: pipefail would see nm's SIGPIPE
grep -q ' T cblas_sbgemm$' <<<"$symbols" || { echo "built library lacks cblas_sbgemm" >&2; exit 1; }
echo "SFTDECK_SBGEMM_LIBRARY=$out/libopenblas_sbgemm.so   (TARGET=$target)"
