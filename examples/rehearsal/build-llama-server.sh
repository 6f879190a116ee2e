#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (the binary the seed's llama.cpp runtime image runs) once per
# machine, into a cache outside the checkout, and prints its path. The source is the llama.cpp
# that the llama-cpp-python sdist on PyPI vendors (reachable from an air gap's PyPI mirror);
# cmake and ninja come from PyPI too. CPU only, unoptimised (-O0: a tiny random-weight model is
# all it serves here) and a unity build (each target's sources compiled as a few batches, so the
# large headers are parsed a few times rather than once per file): 3.0 minutes on 2 cores here,
# where one file at a time took 5.8 (and 5.6 CPU-minutes rather than 11.2, which the tests it
# runs beside in .ci/run feel). Two sources that cannot share a batch are left out of theirs.
set -euo pipefail
version=0.3.36
cache="${XDG_CACHE_HOME:-$HOME/.cache}/llmkube/llama.cpp-$version-O0-unity"
bin="$cache/build/bin/llama-server"
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
mkdir -p "$cache"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore cmake ninja >&2
if [ ! -d "$cache/src" ]; then
    tmp=$(mktemp -d)
    # The sdist straight from the package index (PEP 503, so a mirror in PIP_INDEX_URL works):
    # `pip download` would prepare its metadata, which builds half of llama.cpp.
    index="${PIP_INDEX_URL:-https://pypi.org/simple}"
    url=$(python3 - "$index" "$version" <<'PY'
import re, sys, urllib.parse, urllib.request
index, version = sys.argv[1].rstrip("/"), sys.argv[2]
page = f"{index}/llama-cpp-python/"
html = urllib.request.urlopen(page, timeout=60).read().decode()
for href in re.findall(r'href="([^"]+)"', html):
    if f"llama_cpp_python-{version}.tar.gz" in href:
        print(urllib.parse.urljoin(page, href.split("#")[0]))
        break
else:
    sys.exit(f"llama_cpp_python-{version}.tar.gz is not in {page}")
PY
)
    curl -fsSL --retry 3 -o "$tmp/src.tar.gz" "$url"
    tar -xzf "$tmp/src.tar.gz" -C "$tmp"
    mv "$tmp/llama_cpp_python-$version/vendor/llama.cpp" "$cache/src"
    rm -rf "$tmp"
fi
# Included after project(); the deferred calls run once every target exists.
cat > "$cache/unity-exclusions.cmake" <<'CMAKE'
include_guard(GLOBAL)
# Specialises a template its header's users have already instantiated.
cmake_language(DEFER CALL set_source_files_properties "${CMAKE_SOURCE_DIR}/common/json.cpp"
    TARGET_DIRECTORY llama-common PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
# Refuse (#error) to see mtmd's internal headers, which their batch-mates include.
cmake_language(DEFER CALL set_source_files_properties
    "${CMAKE_SOURCE_DIR}/tools/mtmd/mtmd-helper.cpp" "${CMAKE_SOURCE_DIR}/tools/mtmd/mtmd-helper-gen.cpp"
    TARGET_DIRECTORY mtmd PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
CMAKE
cmake -S "$cache/src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_FLAGS=-O0 -DCMAKE_CXX_FLAGS=-O0 \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_PROJECT_INCLUDE="$cache/unity-exclusions.cmake" \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_BLAS=OFF -DGGML_NATIVE=OFF >&2
cmake --build "$cache/build" --target llama-server -j "$(nproc)" >&2
echo "$bin"
