#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (the binary the seed's llama.cpp runtime image runs) once per
# machine, into a cache outside the checkout, and prints its path. The source is the llama.cpp
# that the llama-cpp-python sdist on PyPI vendors (reachable from an air gap's PyPI mirror);
# cmake and ninja come from PyPI too. CPU only, and unoptimised (-O0): a tiny random-weight model
# is all it serves here, and -O0 compiles in a fraction of a release build's time on 2 cores.
set -euo pipefail
version=0.3.36
cache="${XDG_CACHE_HOME:-$HOME/.cache}/llmkube/llama.cpp-$version-O0"
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
cmake -S "$cache/src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_FLAGS=-O0 -DCMAKE_CXX_FLAGS=-O0 \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_BLAS=OFF -DGGML_NATIVE=OFF >&2
cmake --build "$cache/build" --target llama-server -j "$(nproc)" >&2
echo "$bin"
