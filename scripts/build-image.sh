#!/usr/bin/env bash
# Builds the session image without any image registry (SPEC 10):
#   1. a base made by `debootstrap --variant=minbase` of this host's release
#      from this host's own apt sources, with the flavour's packages included,
#      imported with `docker import`;
#   2. `docker build` of data/image/Dockerfile FROM that base.
# Both steps are cached by content hash: when the tag already exists nothing
# is rebuilt. Prints ONLY the resulting image tag on stdout; progress goes to
# stderr.
#
# usage: scripts/build-image.sh test|full [--base]
#   test  convocate-test:<hash>   small: tmux, sudo, bash, procps, ncurses-bin, jq
#   full  convocate:v<VERSION>    the SPEC 10 package list, en_US.UTF-8
#   --base  stop after the base and print its tag (convocate-base:<flavour>-<hash>):
#           a fresh Debian of this host's release with its apt sources, which
#           tests install our .debs into
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image_dir="$repo/data/image"
# Debian's own client when present: it matches the engine (API 1.41).
if [ -z "${DOCKER:-}" ] && [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; fi
docker=${DOCKER:-docker}

say() { echo "build-image: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

flavour=${1:-}
base_only=${2:-}
[ -z "$base_only" ] || [ "$base_only" = --base ] || {
    echo "usage: $0 test|full [--base]" >&2
    exit 2
}
case "$flavour" in
test) locale=C.UTF-8 ;;
full) locale=en_US.UTF-8 ;;
*)
    echo "usage: $0 test|full" >&2
    exit 2
    ;;
esac
packages_file="$image_dir/packages-$flavour.txt"
# What docker build sees, and what the content hash covers.
context_files=(Dockerfile entrypoint.sh claude-supervisor claude-settings.json activity-hook status-line)
base_recipe="debootstrap-minbase+chroot-apt/2"

# The package list, one name a line, comments and blanks dropped.
packages() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages_file" | grep -v '^$'
}

# First "URI suite" of the host's apt configuration, preferring a suite that is
# this host's own release: one-line sources.list files first, then deb822
# .sources files. Nothing about any mirror is written into the repository.
apt_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" {
                 i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                 print $i, $(i + 1) }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 types = ""; uri = ""; suite = ""; enabled = "yes"
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^#/) continue
                     split($i, kv, ":[[:space:]]*")
                     key = tolower(kv[1]); val = substr($i, length(kv[1]) + 2)
                     sub(/^[[:space:]]+/, "", val)
                     split(val, words, /[[:space:]]+/)
                     if (key == "types") types = val
                     else if (key == "uris") uri = words[1]
                     else if (key == "suites") suite = words[1]
                     else if (key == "enabled") enabled = tolower(words[1])
                 }
                 if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && uri != "" && suite != "" && enabled != "no")
                     print uri, suite
             }' "$f"
    done
}

pick_source() {
    local codename="" sources
    if [ -r /etc/os-release ]; then
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    fi
    sources=$(apt_sources)
    [ -n "$sources" ] || die "no deb source found in /etc/apt/sources.list{,.d/}"
    if [ -n "$codename" ] && echo "$sources" | awk -v c="$codename" '$2 == c { found = 1 } END { exit !found }'; then
        echo "$sources" | awk -v c="$codename" '$2 == c { print; exit }'
    else
        echo "$sources" | head -n 1
    fi
}

hash_of() { sha256sum | cut -c1-16; }

image_exists() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# Removes a build root, unmounting the chroot's /proc first; never crosses
# into another file system even if an unmount failed.
cleanup_root() {
    local work=$1
    if mountpoint -q "$work/rootfs/proc" 2>/dev/null; then
        umount "$work/rootfs/proc" || umount -l "$work/rootfs/proc"
    fi
    rm -rf --one-file-system "$work"
}

# The flavour's packages go in with apt inside the chroot rather than with
# debootstrap --include: debootstrap's resolver cannot configure large sets
# such as npm's, apt can.
install_packages() {
    local rootfs=$1
    local -a pkgs
    mapfile -t pkgs < <(packages)
    mount -t proc proc "$rootfs/proc" || die "cannot mount /proc in the build root"
    # No daemon may start inside the build root.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    chroot "$rootfs" apt-get -q update >&2 || die "apt-get update in the build root failed"
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install \
        --no-install-recommends "${pkgs[@]}" >&2 || die "apt-get install of ${pkgs[*]} failed"
    chroot "$rootfs" apt-get clean
    rm -f "$rootfs/usr/sbin/policy-rc.d"
    rm -rf "$rootfs/var/lib/apt/lists/"*
    umount "$rootfs/proc" || die "cannot unmount /proc in the build root"
}

# debootstrap + apt + docker import, unless a base with this content exists.
build_base() {
    local tag=$1 suite=$2 mirror=$3 work started
    if image_exists "$tag"; then
        say "base $tag is cached"
        return 0
    fi
    work=$(mktemp -d /var/tmp/convocate-base.XXXXXX)
    # shellcheck disable=SC2064 # expand $work now: it is local
    trap "cleanup_root '$work'" EXIT
    say "debootstrap --variant=minbase $suite from $mirror"
    started=$SECONDS
    debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >&2 ||
        die "debootstrap of $suite failed (log: $work/rootfs/debootstrap/debootstrap.log)"
    say "debootstrap took $((SECONDS - started)) s; installing $(packages | paste -sd' ' -)"
    install_packages "$work/rootfs"
    say "base ready after $((SECONDS - started)) s; importing as $tag"
    tar -C "$work/rootfs" --numeric-owner -c . |
        "$docker" import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null ||
        die "docker import failed"
    cleanup_root "$work"
    trap - EXIT
}

build_image() {
    local tag=$1 base=$2 content_hash=$3 ctx
    say "docker build $tag FROM $base"
    ctx=$(mktemp -d /var/tmp/convocate-ctx.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$ctx'" EXIT
    cp "${context_files[@]/#/$image_dir/}" "$ctx/"
    DOCKER_BUILDKIT=0 "$docker" build -q --network none \
        --build-arg "BASE=$base" --build-arg "LOCALE=$locale" \
        --label "convocate.content-hash=$content_hash" \
        -t "$tag" "$ctx" >&2 || die "docker build of $tag failed"
    rm -rf "$ctx"
    trap - EXIT
}

# The full tag is fixed, so its cache key is the content label on it.
is_current() {
    image_exists "$1" && [ "$("$docker" image inspect -f \
        '{{index .Config.Labels "convocate.content-hash"}}' "$1")" = "$2" ]
}

main() {
    local source suite mirror base_hash base_tag content_hash tag version f
    [ -f "$packages_file" ] || die "missing $packages_file"
    for f in "${context_files[@]}"; do
        [ -f "$image_dir/$f" ] || die "missing $image_dir/$f"
    done
    source=$(pick_source)
    mirror=${source%% *}
    suite=${source##* }
    # base_recipe names how the base is made: bump it when build_base changes.
    base_hash=$({ echo "$base_recipe"; echo "$suite"; echo "$mirror"; packages; } | hash_of)
    base_tag="convocate-base:$flavour-$base_hash"
    content_hash=$({ for f in "${context_files[@]}"; do echo "== $f"; cat "$image_dir/$f"; done
        packages; echo "$base_tag $locale"; } | hash_of)
    if [ "$flavour" = test ]; then
        tag="convocate-test:$content_hash"
    else
        version=$(tr -d '[:space:]' <"$repo/VERSION")
        tag="convocate:v$version"
    fi
    if [ -n "$base_only" ] && image_exists "$base_tag"; then
        echo "$base_tag"
        return 0
    fi
    if [ -z "$base_only" ] && is_current "$tag" "$content_hash"; then
        echo "$tag"
        return 0
    fi
    # One build per flavour at a time: parallel runs would race on the tags.
    # The cache check above stays outside the lock, so a cached tag never waits.
    exec 9>"/var/tmp/convocate-build-image-$flavour.lock"
    flock 9
    if [ -z "$base_only" ] && is_current "$tag" "$content_hash"; then
        echo "$tag"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps)"
    build_base "$base_tag" "$suite" "$mirror"
    if [ -n "$base_only" ]; then
        echo "$base_tag"
        return 0
    fi
    build_image "$tag" "$base_tag" "$content_hash"
    say "built $tag"
    echo "$tag"
}

main
