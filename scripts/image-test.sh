#!/usr/bin/env bash
# make image-test: build the Dockerfile with podman (no Docker engine needed) and run the installed CLI and server
# from the image's mounted file system. Needs root, podman and debootstrap (Debian: apt-get install podman
# debootstrap), the internet (Debian's mirror, PyPI) and ../shared (the weights, offline, and a real clip).
#
# Containers cannot be run here (podman run fails in this sandbox), so the image is created, mounted, and its CLI
# run with chroot, with the image's own environment, as the default command would run it. The debootstrap'd base is
# cached in $IMAGE_TEST_CACHE.
#
# TRAIN=1 builds the training image instead (torch's CPU wheel: from /opt/wheels when it lies there, mounted into the
# build, else from PyTorch's CPU index) and trains a model through the image's REST service on an uploaded dataset.
set -euo pipefail

SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
CACHE=${IMAGE_TEST_CACHE:-/var/tmp/audioclas-image}
TRAIN=${TRAIN:-0}
if [ "$TRAIN" = 1 ]; then TAG=${IMAGE_TAG:-localhost/audioclas:test-train}; else TAG=${IMAGE_TAG:-localhost/audioclas:test}; fi
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}
BASE_TAG=localhost/audioclas-base:bookworm
CLIP=${CLIP:-$SHARED/audio/456440__inspectorj__bird-whistling-robin-single-13.ogg}
CA=/etc/ssl/certs/ca-certificates.crt
PODMAN=(podman --storage-driver vfs)
# Free loopback ports: chroot shares the host's network.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${IMAGE_TEST_PORT:-$(free_port)}
DEEPAAS_PORT=$(free_port)

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

step "build: podman build --isolation chroot, TRAIN=$TRAIN, offline weights from $SHARED"
context=$(mktemp -d)
container=
mounted=
mounts=()  # what the test mounted inside the image, unmounted in reverse order
server_pid=
weights_server=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "$weights_server" ] && kill "$weights_server" 2>/dev/null || true
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || true; done
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
build_args=(--build-arg "BASE=$BASE_TAG" --build-arg WEIGHTS_FILE=.image-weights/mn04_as_mAP_432.pt
    --build-arg "TRAIN=$TRAIN")
if [ "$TRAIN" = 1 ] && compgen -G "$TORCH_WHEELS/torch-*+cpu-*.whl" >/dev/null; then
    build_args+=(--volume "$TORCH_WHEELS:$TORCH_WHEELS:ro" --build-arg "TORCH_FIND_LINKS=$TORCH_WHEELS")
fi
"${PODMAN[@]}" build --isolation chroot --format docker --volume "$CA:$CA:ro" "${build_args[@]}" \
    --tag "$TAG" "$context"
"${PODMAN[@]}" image inspect "$TAG" --format 'image size: {{.Size}} bytes'
took

step "weights download: the first stage fetches the checkpoint by URL (served on loopback) and checks its sha256"
# The build shares the host's network, so a loopback server stands in for the upstream release (GitHub is out of
# reach here); only the first stage is built, and its wheel layer comes from the cache.
WEIGHTS_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$SHARED/weights/efficientat" "$WEIGHTS_PORT" \
    >"$CACHE/weights-server.log" 2>&1 &
weights_server=$!
for _ in $(seq 40); do curl -fsS -o /dev/null "http://127.0.0.1:$WEIGHTS_PORT/" 2>/dev/null && break; sleep 0.25; done
url_build=("${PODMAN[@]}" build --isolation chroot --format docker --volume "$CA:$CA:ro" --target build
    --build-arg "BASE=$BASE_TAG" --build-arg "WEIGHTS_URL=http://127.0.0.1:$WEIGHTS_PORT/mn04_as_mAP_432.pt")
"${url_build[@]}" --tag localhost/audioclas-weights:test "$context" >"$CACHE/weights-build.log" 2>&1 ||
    { tail -20 "$CACHE/weights-build.log" >&2; echo "image-test: the weights download failed" >&2; exit 1; }
grep -q "mn04_as_mAP_432.pt: OK" "$CACHE/weights-build.log" ||
    { echo "image-test: the downloaded weights were not checked" >&2; exit 1; }
if "${url_build[@]}" --build-arg "WEIGHTS_SHA256=$(printf '0%.0s' $(seq 64))" "$context" \
    >"$CACHE/weights-bad.log" 2>&1; then
    echo "image-test: a build took weights whose sha256 does not match" >&2
    exit 1
fi
grep -q "FAILED" "$CACHE/weights-bad.log" || { echo "image-test: the bad checksum did not fail the check" >&2; exit 1; }
kill "$weights_server"
weights_server=
"${PODMAN[@]}" rmi localhost/audioclas-weights:test >/dev/null
took

step "inspect: user, port, volumes, healthcheck, command"
"${PODMAN[@]}" image inspect "$TAG" --format \
    'user={{.Config.User}} ports={{.Config.ExposedPorts}} volumes={{.Config.Volumes}} cmd={{.Config.Cmd}}'
"${PODMAN[@]}" image inspect "$TAG" --format '{{.HealthCheck.Test}}' | grep -q /health ||
    { echo "image-test: no HEALTHCHECK on /health" >&2; exit 1; }
"${PODMAN[@]}" image inspect "$TAG" --format '{{index .Config.Labels "org.opencontainers.image.licenses"}}' |
    grep -qx 'MIT AND CC-BY-4.0 AND CC-BY-SA-4.0' || { echo "image-test: no licence label" >&2; exit 1; }
took

step "mount: podman create + podman mount"
# --no-healthcheck: podman would set up a systemd timer for it, and there is no systemd here.
container=$("${PODMAN[@]}" create --no-healthcheck "$TAG")
root=$("${PODMAN[@]}" mount "$container")
mounted=1
# What a container runtime gives every container: /proc (ONNX Runtime reads the CPU's features from it) and a
# tmpfs on /dev/shm (multiprocessing's locks live there: DEEPaaS's worker pool).
mount -t proc proc "$root/proc"
mounts+=("$root/proc")
mkdir -p "$root/dev/shm"
mount -t tmpfs -o mode=1777,size=64m shm "$root/dev/shm"
mounts+=("$root/dev/shm")
cp "$CLIP" "$root/tmp/clip.ogg"
chown 10001:10001 "$root/tmp/clip.ogg"
# The image's own ENV, for commands run with chroot (which does not read the image's config). An array, not a
# function: a backgrounded function is a subshell, and killing it would leave the server running.
mapfile -t image_env < <("${PODMAN[@]}" image inspect "$TAG" --format '{{range .Config.Env}}{{println .}}{{end}}' |
    grep .)
in_image=(chroot --userspec=10001:10001 "$root" /usr/bin/env -i HOME=/var/lib/audioclas "${image_env[@]}")
printf '   %s\n' "${image_env[@]}"
took

step "predict: audioclas predict on a real clip, as the image's user"
"${in_image[@]}" audioclas predict /tmp/clip.ogg | tee "$CACHE/predict.txt"
grep -qi bird "$CACHE/predict.txt" || { echo "image-test: no bird in the robin clip's tags" >&2; exit 1; }
took

step "serve: audioclas serve on loopback, /health and a predict"
"${in_image[@]}" audioclas serve --host 127.0.0.1 --port "$PORT" >"$CACHE/serve.log" 2>&1 &
server_pid=$!
wait_for() {  # URL: until it answers, while the server lives
    for _ in $(seq 240); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$CACHE/serve.log" >&2; exit 1; }
        sleep 0.5
    done
    echo "image-test: $1 did not answer" >&2
    exit 1
}
stop_server() {
    kill "$server_pid"
    wait "$server_pid" || true  # chroot and env exec: this is the server itself, stopped by SIGTERM
    server_pid=
}
api=http://127.0.0.1:$PORT
wait_for "$api/health"
curl -fsS "$api/health"
echo
curl -fsS -F "files=@$CLIP" "$api/v2/models/audioset/predict/" | tee "$CACHE/predict.json"
echo
grep -qi bird "$CACHE/predict.json" || { echo "image-test: no bird in the served tags" >&2; exit 1; }
# The image's own health check, run as Docker would run it.
"${in_image[@]}" python3 -c "import urllib.request; urllib.request.urlopen('$api/health', timeout=8)"
took

step "datasets: upload a real dataset (FSDD digits 0 and 1) into the image's data root"
python3 - "$SHARED/datasets/fsdd" "$context/digits.zip" <<'PY'
import sys, zipfile
from pathlib import Path

fsdd, out = Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(out, "w") as archive:
    archive.writestr("classes.txt", "zero\none\n")  # FSDD's first two classes: its labels 0 and 1 stay as they are
    for split, count in (("train", 12), ("test", 4)):
        rows = [line.split() for line in (fsdd / f"{split}.txt").read_text().splitlines()]
        chosen = [row for digit in ("0", "1") for row in [row for row in rows if row[1] == digit][:count]]
        archive.writestr(f"{split}.txt", "".join(f"{path} {label}\n" for path, label in chosen))
        for path, _ in chosen:
            archive.write(fsdd / path, path)
PY
curl -fsS -F "file=@$context/digits.zip" -F name=digits "$api/v2/datasets/" | tee "$CACHE/dataset.json"
echo
dataset=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["path"])' "$CACHE/dataset.json")
case "$dataset" in /var/lib/audioclas/datasets/uploads/digits/*) ;; *)
    echo "image-test: the dataset is not in the image's data root: $dataset" >&2; exit 1 ;; esac
curl -fsS "$api/v2/datasets/" | grep -q '"digits"' || { echo "image-test: the dataset is not listed" >&2; exit 1; }
took

if [ "$TRAIN" = 1 ]; then
    step "train: a frozen head on the uploaded dataset, through the REST service; then predict with it"
    curl -fsS -H 'Content-Type: application/json' \
        -d "{\"dataset\": \"$dataset\", \"name\": \"digits\", \"head\": \"linear\", \"epochs\": 30, \"lr\": 0.01}" \
        "$api/v2/models/audioset/train/" | tee "$CACHE/job.json"
    echo
    job=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$CACHE/job.json")
    for _ in $(seq 600); do
        status=$(curl -fsS "$api/v2/models/audioset/train/$job" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')
        case "$status" in succeeded | failed | cancelled | interrupted) break ;; esac
        sleep 1
    done
    [ "$status" = succeeded ] || { curl -sS "$api/v2/models/audioset/train/$job" >&2; exit 1; }
    # A clip it was trained on (twelve a class fit the head, but are too few to judge it on new speech).
    clip=$(awk '$2 == 1 { print $1; exit }' "$SHARED/datasets/fsdd/train.txt")
    curl -fsS -F "files=@$SHARED/datasets/fsdd/$clip" "$api/v2/models/digits/predict/" | tee "$CACHE/digits.json"
    echo
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["results"][0]["labels"][0]["name"] != "one")' \
        "$CACHE/digits.json" || { echo "image-test: the trained model did not tag its own clip of 'one'" >&2; exit 1; }
    # Its curves, for the image's TensorBoard (docker run … tensorboard --logdir /var/lib/audioclas/runs).
    find "$root/var/lib/audioclas/runs" -name 'events.out.tfevents.*' | grep -q . ||
        { echo "image-test: training wrote no TensorBoard logs in the home volume" >&2; exit 1; }
    "${in_image[@]}" tensorboard --version
    took
else
    step "train: refused with the extra to install (this image has no torch)"
    code=$(curl -sS -o "$CACHE/train.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"dataset\": \"$dataset\"}" "$api/v2/models/audioset/train/")
    cat "$CACHE/train.json"
    echo
    [ "$code" = 501 ] && grep -q 'audioclas\[train\]' "$CACHE/train.json" ||
        { echo "image-test: training without torch answered $code" >&2; exit 1; }
    took
fi
stop_server

step "deepaas: deepaas-run on loopback, the model listed and a predict"
"${in_image[@]}" deepaas-run --listen-ip 127.0.0.1 --listen-port "$DEEPAAS_PORT" >"$CACHE/deepaas.log" 2>&1 &
server_pid=$!
wait_for "http://127.0.0.1:$DEEPAAS_PORT/v2/models/"
curl -fsS "http://127.0.0.1:$DEEPAAS_PORT/v2/models/" | grep -q '"audioclas"' ||
    { echo "image-test: DEEPaaS does not list audioclas" >&2; exit 1; }
curl -fsS -F "data=@$CLIP" "http://127.0.0.1:$DEEPAAS_PORT/v2/models/audioclas/predict/?top_k=3" |
    tee "$CACHE/deepaas.json"
echo
grep -qi bird "$CACHE/deepaas.json" || { echo "image-test: no bird in DEEPaaS's tags" >&2; exit 1; }
# The image's /etc/deepaas/deepaas.conf bounds a request (DEEPaaS reads it whole into memory; its default: no bound).
truncate -s 101M "$context/big.wav"
code=$(curl -sS -o /dev/null -w '%{http_code}' -F "data=@$context/big.wav" \
    "http://127.0.0.1:$DEEPAAS_PORT/v2/models/audioclas/predict/" || true)  # it may close while curl sends
[ "$code" = 413 ] || { echo "image-test: DEEPaaS took a 101 MiB request ($code)" >&2; exit 1; }
stop_server
took

step "clean up: unmount and remove the container"
for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}"; done
mounts=()
"${PODMAN[@]}" unmount "$container" >/dev/null
mounted=
"${PODMAN[@]}" rm "$container" >/dev/null
container=
# vfs copies every layer whole: drop the images earlier builds left untagged (the tagged ones are the next cache).
"${PODMAN[@]}" image prune --force >/dev/null
took
echo "== image-test passed in $(($(date +%s) - total_start)) s"
