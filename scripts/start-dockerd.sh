#!/usr/bin/env bash
# Starts dockerd in the background when no engine answers (no systemd here).
set -euo pipefail
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker

if "$docker_cli" info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "start-dockerd: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
echo "start-dockerd: starting dockerd (log: /var/log/dockerd-convocate.log)"
nohup dockerd >/var/log/dockerd-convocate.log 2>&1 &
for _ in $(seq 1 60); do
  if "$docker_cli" info >/dev/null 2>&1; then
    echo "start-dockerd: engine is up"
    exit 0
  fi
  sleep 1
done
echo "start-dockerd: dockerd did not answer within 60 s; see /var/log/dockerd-convocate.log" >&2
exit 1
