#!/usr/bin/env bash
# Docker smoke test (CI): build the image, run it, check chat (openai SDK), embeddings and a predictor.
#
# Starts a Docker engine if none answers, and builds a stand-in for the official Python base image
# (debootstrap) when no registry can be reached. Prints the build time and the image size. Exits
# non-zero on any failure. Knobs (environment): IMAGE, BASE_IMAGE, PYTHON, HEALTH_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-myllama:smoke}"
# The base image named by the Dockerfile's `ARG BASE_IMAGE` default.
BASE_IMAGE="${BASE_IMAGE:-$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)}"
PYTHON="${PYTHON:-.venv/bin/python}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-300}"
CONTAINER="myllama-smoke-$$"

say() { printf '[docker-smoke] %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    say "installing $* (Debian packages)"
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

start_engine() {
    docker info >/dev/null 2>&1 && return
    command -v dockerd >/dev/null || apt_install docker.io
    say "starting dockerd (log: /tmp/myllama-dockerd.log)"
    as_root bash -c 'nohup dockerd >/tmp/myllama-dockerd.log 2>&1 &'
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    die "dockerd did not answer within 60 s (see /tmp/myllama-dockerd.log)"
}

# The official base image when a registry answers; else a Debian bookworm stand-in under its name.
ensure_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
    docker pull "$BASE_IMAGE" >/dev/null 2>&1 && return
    say "no registry: building a debootstrap stand-in for $BASE_IMAGE (once; cached as that image)"
    command -v debootstrap >/dev/null || apt_install debootstrap
    local rootfs
    rootfs="$(mktemp -d /tmp/myllama-base.XXXXXX)"
    as_root debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" http://deb.debian.org/debian >/tmp/myllama-debootstrap.log 2>&1 \
        || die "debootstrap failed (see /tmp/myllama-debootstrap.log)"
    # Downloads may pass a TLS proxy whose CA only this machine's bundle carries.
    as_root cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        as_root cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    fi
    as_root rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    as_root tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    as_root rm -rf "$rootfs"
}

# wheels/ (gitignored) lets the build reuse this machine's llama-cpp-python build and the CPU torch.
fill_wheelhouse() {
    local llama torch
    llama="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)"
    torch="$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml)"
    if [ -z "$llama" ] || [ -z "$torch" ]; then
        die "pyproject.toml pins no llama-cpp-python or torch"
    fi
    mkdir -p wheels
    if ! compgen -G "wheels/llama_cpp_python-$llama-*.whl" >/dev/null; then
        say "wheelhouse: llama-cpp-python $llama (from pip's cache, or compiled once here)"
        "$PYTHON" -m pip wheel --quiet --no-deps "llama-cpp-python==$llama" -w wheels
    fi
    if ! compgen -G "wheels/torch-$torch+cpu-*.whl" >/dev/null; then
        say "wheelhouse: torch $torch+cpu"
        "$PYTHON" -m pip download --quiet --no-deps "torch==$torch+cpu" -d wheels \
            || die "no CPU torch $torch wheel: set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu"
    fi
}

build_image() {
    local start seconds bytes
    # TORCH_INDEX_URL is emptied: the CPU torch comes from the wheelhouse.
    local args=(--network host --force-rm --label myllama.smoke=1 --build-arg TORCH_INDEX_URL=)
    start="$(date +%s)"
    docker build "${args[@]}" -t "$IMAGE" . >/tmp/myllama-docker-build.log 2>&1 \
        || { tail -40 /tmp/myllama-docker-build.log >&2; die "docker build"; }
    seconds=$(($(date +%s) - start))
    bytes="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
    say "build: ${seconds} s; image $IMAGE: $((bytes / 1000000)) MB"
    echo "docker_build_seconds=$seconds image_size_mb=$((bytes / 1000000))"
    # Disk: tag the build stage (the next run's cache; already built, so instant), then drop this
    # script's older untagged images, which a dependency change leaves behind (GBs each).
    docker build "${args[@]}" --target build -t "$IMAGE-build" . >/dev/null 2>&1 \
        || die "tagging the build stage"
    docker image prune -f --filter label=myllama.smoke=1 >/dev/null
}

cleanup() {
    local rc=$?
    if docker container inspect "$CONTAINER" >/dev/null 2>&1; then
        [ "$rc" = 0 ] || docker logs --tail 60 "$CONTAINER" >&2 || true
        docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    fi
    exit "$rc"
}

wait_healthy() {
    local status
    for _ in $(seq "$HEALTH_TIMEOUT"); do
        status="$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$CONTAINER")"
        case "$status" in
            "running healthy") return ;;
            running*) sleep 1 ;;
            *) die "container stopped before it was healthy ($status)" ;;
        esac
    done
    die "not healthy within ${HEALTH_TIMEOUT} s ($status)"
}

main() {
    start_engine
    ensure_base_image
    fill_wheelhouse
    build_image

    local port api_key start
    port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    api_key="smoke-$(date +%s%N)"
    trap cleanup EXIT
    say "run: $IMAGE on port $port (host network)"
    start="$(date +%s)"
    docker run -d --name "$CONTAINER" --network host \
        -e MYLLAMA_PORT="$port" -e MYLLAMA_API_KEY="$api_key" "$IMAGE" >/dev/null
    wait_healthy
    say "healthy after $(($(date +%s) - start)) s"

    "$PYTHON" scripts/docker_smoke_check.py --base-url "http://127.0.0.1:$port" --api-key "$api_key"

    docker stop --time 20 "$CONTAINER" >/dev/null
    [ "$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")" = 0 ] \
        || die "the server did not stop cleanly on SIGTERM"
    docker rm "$CONTAINER" >/dev/null
    say "OK"
}

main "$@"
