#!/usr/bin/env bash
# Starts dockerd in the background when no engine answers (no systemd here).
# A dockerd that is already running but not answering yet (still starting,
# or busy) is waited for, not doubled: a second one would only fail on the
# pid file, and its log would replace the first one's.
set -euo pipefail
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker
log=/var/log/dockerd-convocate.log

wait_for_engine() {
  for _ in $(seq 1 60); do
    if "$docker_cli" info >/dev/null 2>&1; then
      echo "start-dockerd: engine is up"
      return 0
    fi
    sleep 1
  done
  return 1
}

if "$docker_cli" info >/dev/null 2>&1; then
  exit 0
fi
if running=$(pgrep -x dockerd); then
  echo "start-dockerd: dockerd (pid ${running//$'\n'/ }) is running but not answering yet; waiting"
  wait_for_engine && exit 0
  echo "start-dockerd: dockerd (pid ${running//$'\n'/ }) did not answer within 60 s; see $log or stop it and run this again" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null; then
  echo "start-dockerd: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
echo "start-dockerd: starting dockerd (log: $log)"
nohup dockerd >>"$log" 2>&1 &
wait_for_engine && exit 0
echo "start-dockerd: dockerd did not answer within 60 s; see $log" >&2
exit 1
