#!/bin/bash
# PID 1 of a convocate session container (SPEC 10): makes the claude user,
# starts tmux session "claude" as that user, and lives exactly as long as that
# tmux session does. docker stop's SIGTERM ends the session and the container.
set -u

uid=${CLAUDE_UID:-1337}
gid=${CLAUDE_GID:-1337}

say() { echo "convocate-entrypoint: $*" >&2; }

# Group, then user, with the agent's ids; an id already taken in the image
# falls back to a free one (files in the bind-mounted home then need sudo).
make_claude() {
    if ! getent group claude >/dev/null; then
        if getent group "$gid" >/dev/null; then
            say "gid $gid is taken; group claude gets a free id"
            groupadd claude || return 1
        else
            groupadd --gid "$gid" claude || return 1
        fi
    fi
    if ! getent passwd claude >/dev/null; then
        local uid_args=(--uid "$uid")
        if getent passwd "$uid" >/dev/null; then
            say "uid $uid is taken; user claude gets a free id"
            uid_args=()
        fi
        useradd "${uid_args[@]}" --gid claude --home-dir /home/claude --no-create-home \
            --shell /bin/bash claude || return 1
    fi
    mkdir -p /etc/sudoers.d &&
        echo "claude ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/claude &&
        chmod 0440 /etc/sudoers.d/claude
}

as_claude() {
    runuser -u claude -- env HOME=/home/claude "$@"
}

session_command() {
    if [ -x /usr/local/bin/claude ]; then
        echo "/usr/local/bin/claude"
    else
        echo "exec bash --login"
    fi
}

stop_session() {
    as_claude tmux kill-server 2>/dev/null
    exit 0
}

make_claude || { say "could not create the claude user"; exit 1; }
cd /home/claude || exit 1
as_claude tmux new-session -d -s claude -x 200 -y 50 "$(session_command)" ||
    { say "tmux could not start"; exit 1; }

trap stop_session TERM INT HUP
# Poll rather than block on tmux: the session may be ended from inside
# (exit, kill-session) or from outside (docker exec), and both must end us.
while as_claude tmux has-session -t claude 2>/dev/null; do
    sleep 1 &
    wait $!
done
say "tmux session ended"
exit 0
