#!/usr/bin/env bash
# Installs what the build and the tests need from the machine's own apt
# sources, then makes sure a Docker engine answers. Safe to run repeatedly.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config clang-format clang
  libssh-dev libjansson-dev libncurses-dev libcmocka-dev libcurl4-openssl-dev libssl-dev
  docker.io openssh-client openssh-server tmux debootstrap
  python3 python3-pytest python3-pexpect python3-paramiko
  iproute2 procps util-linux rsyslog rsyslog-openssl dnsmasq dnsutils apparmor
  genisoimage time
  scdoc man-db debhelper lintian
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# libFuzzer (make fuzz) ships in clang's runtime package, which clang only
# recommends: install the one of this clang's major version when a tiny
# harness does not link.
fuzz_probe=$(mktemp -d)
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n; }\n' \
  > "$fuzz_probe/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$fuzz_probe/probe.c" -o "$fuzz_probe/probe" 2>/dev/null; then
  major=$(clang -dumpversion | cut -d. -f1)
  echo "install-deps: installing libclang-rt-$major-dev (libFuzzer)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
    "libclang-rt-$major-dev"
fi
rm -rf "$fuzz_probe"

bash "$(dirname "$0")/start-dockerd.sh"
