# model-cache-cleanup: run by the Job the controller creates (with --model-cache-cleanup) when
# the set of cache keys a namespace's Models reference changes. Removes from the model cache
# every key directory (16 hex digits) that no Model references, unless a download holds its
# lock or it is younger than GRACE_MINUTES (a Model created after the Job was made). Anything
# else on the volume (an admin's own claim may hold more) is left alone.
set -u
dir=${CACHE_DIR:-/models}
grace=$(( ${GRACE_MINUTES:-60} * 60 ))
now=$(date +%s)
removed=0
for path in "$dir"/*/; do
    [ -d "$path" ] || continue
    key=$(basename "$path")
    case "$key" in *[!0-9a-f]*) continue ;; esac
    [ "${#key}" -eq 16 ] || continue
    case " $KEEP " in *" $key "*) continue ;; esac
    if ls "$path"*.lock >/dev/null 2>&1; then
        echo "keeping $key: a download holds its lock"
        continue
    fi
    age=$(( now - $(stat -c %Y "$path") ))
    if [ "$age" -lt "$grace" ]; then
        echo "keeping $key: ${age}s old, within the grace period"
        continue
    fi
    echo "removing $key: no Model references it"
    rm -rf "$path"
    removed=$((removed + 1))
done
echo "removed $removed unreferenced model(s)"
