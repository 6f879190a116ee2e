# model-downloader: runs in the init container of every InferenceService whose Model is an
# https://, http:// or file:// source. Fetches (or copies) the file into the model volume,
# hashes it, refuses it on a sha256 mismatch, and reports the outcome as JSON in the
# termination message, which the controller turns into readable status. Needs only sh, curl,
# sha256sum and wc (busybox).
set -u
log=${TERMINATION_LOG:-/dev/termination-log}
report() { printf '%s' "$1" > "$log" 2>/dev/null || true; }
dest=$DEST
mkdir -p "$(dirname "$dest")"
if [ -n "${CA_FILE:-}" ] && [ -f "$CA_FILE" ]; then
    # Trust the site CA on top of the image's own roots.
    cat /etc/ssl/certs/ca-certificates.crt "$CA_FILE" > /tmp/ca-bundle.pem 2>/dev/null || cp "$CA_FILE" /tmp/ca-bundle.pem
    export CURL_CA_BUNDLE=/tmp/ca-bundle.pem
    echo "trusting the CA in $CA_FILE"
fi
expected=$(printf '%s' "${SHA256:-}" | tr 'A-F' 'a-f')
if [ -f "$dest" ] && [ -n "$expected" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$expected" ]; then
    echo "$dest is already present and verified"
else
    case "$SOURCE" in
        http://*|https://*)
            echo "downloading $SOURCE"
            curl --fail --location --show-error --progress-bar --retry 3 --connect-timeout 30 -o "$dest.part" "$SOURCE"
            rc=$?
            if [ "$rc" -ne 0 ]; then
                rm -f "$dest.part"
                report "{\"error\":\"curl failed\",\"exitCode\":$rc}"
                exit "$rc"
            fi
            mv "$dest.part" "$dest"
            ;;
        *)
            src="${SOURCE_DIR:-}/$(basename "${SOURCE#file://}")"
            echo "copying $src"
            if ! cp "$src" "$dest"; then
                report "{\"error\":\"cannot copy $src (is the pod on a node that has the file?)\",\"exitCode\":23}"
                exit 23
            fi
            ;;
    esac
fi
sum=$(sha256sum "$dest" | cut -d' ' -f1)
size=$(wc -c < "$dest" | tr -d ' ')
if [ -n "$expected" ] && [ "$sum" != "$expected" ]; then
    rm -f "$dest"
    echo "sha256 mismatch: expected $expected, got $sum; the file was deleted"
    report "{\"error\":\"sha256 mismatch\",\"expected\":\"$expected\",\"actual\":\"$sum\"}"
    exit 65
fi
echo "ok: $dest sha256 $sum ($size bytes)"
report "{\"sha256\":\"$sum\",\"size\":$size}"
