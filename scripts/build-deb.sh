#!/usr/bin/env bash
# make deb: the convocate and convocate-agent packages, built with Debian's
# own tooling (dpkg-buildpackage, debhelper) from debian/, in a clean copy of
# the tree under OUT (default build/deb). The version is the VERSION file's:
# the copy's debian/changelog is written from it. Missing build dependencies
# are installed with apt when run as root, else named. lintian, when
# installed, checks both packages (errors fail the build; its tags are
# written to OUT/lintian.txt). Prints the two .deb paths on stdout; progress
# goes to stderr.
#
# usage: scripts/build-deb.sh [OUT]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

say() { echo "build-deb: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

version=$(tr -d '[:space:]' <"$repo/VERSION")
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION holds \"$version\", not X.Y.Z"

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        die "missing build dependencies: $* (install them: sudo apt-get install --no-install-recommends $*)"
    fi
    say "installing build dependencies: $*"
    apt-get update -q >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 ||
        die "apt-get install of $* failed"
}

# Debian's tools first, then what debian/control's Build-Depends lacks, as
# dpkg-checkbuilddeps names it ("Unmet build dependencies: a (>= 1) b | c"):
# the first of each set of alternatives is what we install.
build_deps() {
    if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
        apt_install dpkg-dev debhelper
    fi
    local unmet
    unmet=$(cd "$repo" && dpkg-checkbuilddeps 2>&1 >/dev/null |
        sed -n 's/.*Unmet build dependencies: //p') || true
    [ -n "$unmet" ] || return 0
    local -a pkgs
    mapfile -t pkgs < <(echo "$unmet" |
        sed -e 's/([^)]*)//g' -e 's/<[^>]*>//g' -e 's/|[^,]*//g' -e 's/\[[^]]*\]//g' |
        sed 's/[, ]\+/\n/g' | grep -v '^$' | sort -u)
    apt_install "${pkgs[@]}"
}

# The tracked and new (not ignored) files of the tree, so that build
# directories and stale outputs never reach the package.
copy_tree() {
    local dest=$1
    rm -rf "$dest"
    mkdir -p "$dest"
    if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -) | tar -C "$dest" -xf -
    else
        tar -C "$repo" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$dest" -xf -
    fi
}

write_changelog() {
    local dest=$1 stamp
    stamp=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
    cat >"$dest/debian/changelog" <<CHANGES
convocate ($version) unstable; urgency=medium

  * Version $version, as the VERSION file says.

 -- convocate maintainers <maintainers@convocate.invalid>  $(date -R -u -d "@$stamp")
CHANGES
}

main() {
    build_deps
    local src="$out/convocate-$version" arch log="$out/build.log"
    arch=$(dpkg-architecture -qDEB_HOST_ARCH)
    copy_tree "$src"
    write_changelog "$src"
    rm -f "$out"/convocate*_"$version"_*.deb "$out"/convocate_"$version"_*.changes "$out"/convocate_"$version"_*.buildinfo
    say "dpkg-buildpackage -b in $src (log: $log)"
    if ! (cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$(nproc)" \
        dpkg-buildpackage -b -us -uc) >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "dpkg-buildpackage failed (whole log: $log)"
    fi
    local debs=("$out/convocate_${version}_$arch.deb" "$out/convocate-agent_${version}_$arch.deb")
    for d in "${debs[@]}"; do [ -f "$d" ] || die "dpkg-buildpackage made no $d"; done
    if command -v lintian >/dev/null; then
        say "lintian"
        if ! lintian --fail-on error --tag-display-limit 0 "${debs[@]}" >"$out/lintian.txt" 2>&1; then
            cat "$out/lintian.txt" >&2
            die "lintian reports errors"
        fi
        sed 's/^/build-deb: lintian: /' "$out/lintian.txt" >&2
    else
        say "lintian is not installed: packages not checked (apt-get install lintian)"
    fi
    rm -rf "$src"
    printf '%s\n' "${debs[@]}"
}

main
