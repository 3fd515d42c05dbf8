#!/usr/bin/env bash
# make image-test: build the Dockerfile with podman (no Docker engine needed) and run the installed CLI and server
# from the image's mounted file system. Needs root, podman and debootstrap (Debian: apt-get install podman
# debootstrap), the internet (Debian's mirror, PyPI) and ../shared (the weights, offline, and a real clip).
#
# Containers cannot be run here (podman run fails in this sandbox), so the image is created, mounted, and its CLI
# run with chroot, as the default command would run it. The debootstrap'd base is cached in $IMAGE_TEST_CACHE.
set -euo pipefail

SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
CACHE=${IMAGE_TEST_CACHE:-/var/tmp/audioclas-image}
TAG=${IMAGE_TAG:-localhost/audioclas:test}
BASE_TAG=localhost/audioclas-base:bookworm
CLIP=${CLIP:-$SHARED/audio/456440__inspectorj__bird-whistling-robin-single-13.ogg}
CA=/etc/ssl/certs/ca-certificates.crt
PODMAN=(podman --storage-driver vfs)
# A free loopback port: chroot shares the host's network.
PORT=${IMAGE_TEST_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

step_start=0
step() { step_start=$(date +%s); echo "== $*"; }
took() { echo "   took $(($(date +%s) - step_start)) s"; }

for tool in podman debootstrap chroot curl; do
    command -v "$tool" >/dev/null || { echo "image-test: $tool is not installed" >&2; exit 2; }
done
[ -f "$SHARED/weights/efficientat/mn04_as_mAP_432.pt" ] || { echo "image-test: no weights in $SHARED" >&2; exit 2; }
[ -f "$CLIP" ] || { echo "image-test: no clip at $CLIP" >&2; exit 2; }
total_start=$(date +%s)
mkdir -p "$CACHE"

step "base: debootstrap minbase bookworm with python3 and python3-venv (cached in $CACHE)"
if [ ! -f "$CACHE/bookworm-python3.tar" ]; then
    rm -rf "$CACHE/rootfs.partial"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$CACHE/rootfs.partial" \
        http://deb.debian.org/debian >"$CACHE/debootstrap.log"
    tar -C "$CACHE/rootfs.partial" -cf "$CACHE/bookworm-python3.tar.partial" .
    mv "$CACHE/bookworm-python3.tar.partial" "$CACHE/bookworm-python3.tar"
    rm -rf "$CACHE/rootfs.partial"
fi
if ! "${PODMAN[@]}" image exists "$BASE_TAG"; then
    "${PODMAN[@]}" import "$CACHE/bookworm-python3.tar" "$BASE_TAG" >/dev/null
fi
took

step "build: podman build --isolation chroot, offline weights from $SHARED"
context=$(mktemp -d)
container=
mounted=
proc=
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "$proc" ] && umount "$proc" 2>/dev/null || true
    [ -n "$mounted" ] && "${PODMAN[@]}" unmount "$container" >/dev/null 2>&1 || true
    [ -n "$container" ] && "${PODMAN[@]}" rm "$container" >/dev/null 2>&1 || true
    rm -rf "$context"
}
trap cleanup EXIT
# The build context: the working tree's files that git knows or would add (deleted ones skipped), plus the weights.
(cd "$(dirname "$0")/.." && git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$context" -xf -
mkdir -p "$context/.image-weights"
cp "$SHARED/weights/efficientat/mn04_as_mAP_432.pt" "$context/.image-weights/"
"${PODMAN[@]}" build --isolation chroot --format docker --volume "$CA:$CA:ro" \
    --build-arg "BASE=$BASE_TAG" --build-arg WEIGHTS_FILE=.image-weights/mn04_as_mAP_432.pt \
    --tag "$TAG" "$context"
took

step "inspect: user, port, volumes, healthcheck, command"
"${PODMAN[@]}" image inspect "$TAG" --format \
    'user={{.Config.User}} ports={{.Config.ExposedPorts}} volumes={{.Config.Volumes}} cmd={{.Config.Cmd}}'
"${PODMAN[@]}" image inspect "$TAG" --format '{{.HealthCheck.Test}}' | grep -q /health ||
    { echo "image-test: no HEALTHCHECK on /health" >&2; exit 1; }
took

step "mount: podman create + podman mount"
# --no-healthcheck: podman would set up a systemd timer for it, and there is no systemd here.
container=$("${PODMAN[@]}" create --no-healthcheck "$TAG")
root=$("${PODMAN[@]}" mount "$container")
mounted=1
# A container has /proc (ONNX Runtime reads the CPU's features from it).
mount -t proc proc "$root/proc"
proc=$root/proc
cp "$CLIP" "$root/tmp/clip.ogg"
chown -R 10001:10001 "$root/var/lib/audioclas" "$root/var/cache/audioclas" "$root/tmp/clip.ogg"
# What the image's ENV sets, for commands run with chroot (which does not read the image's config). An array, not
# a function: a backgrounded function is a subshell, and killing it would leave the server running.
in_image=(chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/opt/audioclas/bin:/usr/bin:/bin
    HOME=/var/lib/audioclas AUDIOCLAS_HOME=/var/lib/audioclas AUDIOCLAS_CACHE=/var/cache/audioclas
    AUDIOCLAS_WEIGHTS=/opt/audioclas-weights/mn04_as_mAP_432.pt)
took

step "predict: audioclas predict on a real clip, as the image's user"
"${in_image[@]}" audioclas predict /tmp/clip.ogg | tee "$CACHE/predict.txt"
grep -qi bird "$CACHE/predict.txt" || { echo "image-test: no bird in the robin clip's tags" >&2; exit 1; }
took

step "serve: audioclas serve on loopback, /health and a predict"
"${in_image[@]}" audioclas serve --host 127.0.0.1 --port "$PORT" >"$CACHE/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$CACHE/serve.log" >&2; exit 1; }
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/health"
echo
curl -fsS -F "files=@$CLIP" "http://127.0.0.1:$PORT/v2/models/audioset/predict/" | tee "$CACHE/predict.json"
echo
grep -qi bird "$CACHE/predict.json" || { echo "image-test: no bird in the served tags" >&2; exit 1; }
# The image's own health check, run as Docker would run it.
"${in_image[@]}" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=8)"
kill "$server_pid"
wait "$server_pid" || true  # chroot and env exec: this is the server itself, stopped by SIGTERM
server_pid=
took

step "clean up: unmount and remove the container"
umount "$proc"
proc=
"${PODMAN[@]}" unmount "$container" >/dev/null
mounted=
"${PODMAN[@]}" rm "$container" >/dev/null
container=
took
echo "== image-test passed in $(($(date +%s) - total_start)) s"
