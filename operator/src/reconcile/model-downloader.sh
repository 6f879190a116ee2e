# model-downloader: runs in the init container of every InferenceService whose Model is an
# https://, http:// or file:// source. Fetches (or copies) the file into the model volume
# under a temporary name, hashes it, refuses it on a sha256 mismatch, gives it its final name
# only once verified, and reports the outcome as JSON in the termination message, which the
# controller turns into readable status. HTTPS only (redirects included) unless the Model
# allows plain HTTP (ALLOW_HTTP=1). Needs only sh, curl, sha256sum, sed, tr, wc, stat and date
# (busybox).
#
# With CACHE=1 the file is on the model cache volume that every pod serving the Model shares: one
# pod downloads it under a lock (a directory, as mkdir is atomic, on NFS too, kept fresh by a
# heartbeat so that a crashed holder's lock goes stale after LOCK_STALE_SECONDS) while the others
# wait, and the verified digest is written beside it (DEST.sha256), so that later pods neither
# download nor hash it again.
set -u
log=${TERMINATION_LOG:-/dev/termination-log}
report() { printf '%s' "$1" > "$log" 2>/dev/null || true; }
# A JSON string body: backslashes and quotes escaped, control characters dropped.
json() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'; }
dest=$DEST
part="$dest.part"
mkdir -p "$(dirname "$dest")"
if [ -n "${CA_FILE:-}" ] && [ -f "$CA_FILE" ]; then
    # Trust the site CA on top of the image's own roots.
    cat /etc/ssl/certs/ca-certificates.crt "$CA_FILE" > /tmp/ca-bundle.pem 2>/dev/null || cp "$CA_FILE" /tmp/ca-bundle.pem
    export CURL_CA_BUNDLE=/tmp/ca-bundle.pem
    echo "trusting the CA in $CA_FILE"
fi
expected=$(printf '%s' "${SHA256:-}" | tr 'A-F' 'a-f')
verified="$dest.sha256"
lock="$dest.lock"
cached=false
# The cached file was verified (against SHA256, when there is one) by whoever fetched it.
in_cache() {
    [ -f "$dest" ] && [ -f "$verified" ] && { [ -z "$expected" ] || [ "$(cat "$verified")" = "$expected" ]; }
}
if [ "${CACHE:-}" = 1 ]; then
    while :; do
        if in_cache; then
            cached=true
            break
        fi
        if mkdir "$lock" 2>/dev/null; then
            ( while sleep 10; do touch "$lock" 2>/dev/null || exit 0; done ) >/dev/null 2>&1 &
            heartbeat=$!
            trap 'kill "$heartbeat" 2>/dev/null; rmdir "$lock" 2>/dev/null' EXIT
            # Another pod may have finished between the check above and the lock.
            in_cache && cached=true
            break
        fi
        age=$(( $(date +%s) - $(stat -c %Y "$lock" 2>/dev/null || date +%s) ))
        if [ "$age" -gt "${LOCK_STALE_SECONDS:-120}" ]; then
            echo "the lock on $dest has had no heartbeat for ${age}s; taking over"
            rmdir "$lock" 2>/dev/null || true
            continue
        fi
        echo "another pod is downloading $dest; waiting"
        sleep "${LOCK_POLL_SECONDS:-2}"
    done
fi
if [ "$cached" = true ]; then
    sum=$(cat "$verified")
    echo "$dest is in the model cache, verified"
elif [ -f "$dest" ] && [ -n "$expected" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$expected" ]; then
    echo "$dest is already present and verified"
    sum=$expected
else
    rm -f "$dest" "$part"
    case "$SOURCE" in
        http://*|https://*)
            proto="=https"
            if [ "${ALLOW_HTTP:-}" = 1 ]; then
                proto="=http,https"
            elif [ "${SOURCE#http://}" != "$SOURCE" ]; then
                echo "refusing plain http:// source $SOURCE (set spec.allowPlainHttp on the Model to allow it)"
                report "{\"error\":\"plain http refused\",\"exitCode\":1}"
                exit 1
            fi
            echo "downloading $SOURCE"
            curl --fail --location --show-error --progress-bar --retry 3 --connect-timeout 30 \
                --proto "$proto" --proto-redir "$proto" --globoff -o "$part" "$SOURCE"
            rc=$?
            if [ "$rc" -ne 0 ]; then
                rm -f "$part"
                report "{\"error\":\"curl failed\",\"exitCode\":$rc}"
                exit "$rc"
            fi
            ;;
        *)
            src="${SOURCE_DIR:-}/$(basename "${SOURCE#file://}")"
            echo "copying $src"
            if ! cp "$src" "$part"; then
                rm -f "$part"
                report "{\"error\":\"cannot copy $(json "$src") (is the pod on a node that has the file?)\",\"exitCode\":23}"
                exit 23
            fi
            ;;
    esac
    sum=$(sha256sum "$part" | cut -d' ' -f1)
    if [ -n "$expected" ] && [ "$sum" != "$expected" ]; then
        rm -f "$part"
        echo "sha256 mismatch: expected $expected, got $sum; the file was deleted"
        report "{\"error\":\"sha256 mismatch\",\"expected\":\"$(json "$expected")\",\"actual\":\"$sum\"}"
        exit 65
    fi
    mv "$part" "$dest"
fi
if [ "${CACHE:-}" = 1 ] && [ "$cached" = false ]; then
    printf '%s' "$sum" > "$verified"
fi
size=$(wc -c < "$dest" | tr -d ' ')
echo "ok: $dest sha256 $sum ($size bytes)"
report "{\"sha256\":\"$sum\",\"size\":$size,\"cached\":$cached}"
