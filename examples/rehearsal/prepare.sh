#!/usr/bin/env bash
# The rehearsal's third-party tools, built or installed once per machine into ~/.cache/llmkube
# (outside the checkout), each printed when ready: `prepare.sh llama-server` builds llama.cpp's
# server (build-llama-server.sh), `prepare.sh litellm` installs the LiteLLM proxy in its own
# venv and prints the venv. Without an argument, both (what .ci/run starts in the background
# while it compiles and tests, so the rehearsal finds them ready).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
litellm() {
    # Its own venv: its pins clash with other packages; it pins a certifi newer than some
    # indexes carry, and any recent one serves loopback HTTP.
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/llmkube/litellm-1.108.0"
    if [ ! -x "$venv/bin/litellm" ]; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check uv >&2
        printf 'certifi>=2024\n' > "$venv/overrides.txt"
        "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
            "litellm[proxy]==1.108.0" --override "$venv/overrides.txt" >&2
    fi
    echo "$venv"
}
case "${1:-all}" in
    llama-server) "$here/build-llama-server.sh" ;;
    litellm) litellm ;;
    all) litellm; "$here/build-llama-server.sh" ;;
    *) echo "usage: prepare.sh [llama-server|litellm]" >&2; exit 2 ;;
esac
