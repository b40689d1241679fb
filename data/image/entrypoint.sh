#!/bin/bash
# PID 1 of a convocate session container (SPEC 10, 15): makes the claude user,
# prepares Claude's files in the home, starts tmux session "claude" as that
# user (Claude under its supervisor, or a login shell when the host has no
# Claude), and lives exactly as long as that tmux session does. docker stop's
# SIGTERM ends the session and the container.
#
# Run as "convocate-entrypoint prepare-home" (by itself, as user claude) it
# does the part that touches the session's home: the home is writable by the
# session, so root never reads or writes in it.
set -u

uid=${CLAUDE_UID:-1337}
gid=${CLAUDE_GID:-1337}
home=/home/claude
claude_env_file=/run/convocate/claude.env
supervisor=/usr/local/lib/convocate/claude-supervisor
activity_hook=/usr/local/lib/convocate/activity-hook
# The four keys of claude.env (docs/claude-env-contract.md).
claude_env_keys=(ANTHROPIC_API_KEY CLAUDE_CODE_OAUTH_TOKEN ANTHROPIC_BASE_URL ANTHROPIC_MODEL)
claude_env_max_bytes=16384
claude_env_max_value=4096

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
        useradd "${uid_args[@]}" --gid claude --home-dir "$home" --no-create-home \
            --shell /bin/bash claude || return 1
    fi
    mkdir -p /etc/sudoers.d &&
        echo "claude ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/claude &&
        chmod 0440 /etc/sudoers.d/claude
}

as_claude() {
    runuser -u claude -- env HOME="$home" "$@"
}

# ---- claude.env ----

is_claude_env_key() {
    local k
    for k in "${claude_env_keys[@]}"; do
        [ "$1" = "$k" ] && return 0
    done
    return 1
}

# What may be quoted of a refused key in a warning: printable, at most 64
# bytes. A value is never quoted.
printable_key() {
    local k=${1:0:64}
    echo "${k//[^A-Za-z0-9_.-]/?}"
}

# One or more bytes, each printable ASCII and not a space (0x21..0x7e).
is_token() {
    [ -n "$1" ] && [ -z "$(printf '%s' "$1" | LC_ALL=C tr -d '!-~')" ]
}

# Reads claude.env with the contract's rules and exports the allowed keys
# into this (sub)shell's environment. Anything not allowed is ignored with one
# warning naming its line; the file itself is root's and read-only.
export_claude_env() {
    local file=$claude_env_file line key value n=0 size nuls
    local -A seen=()
    [ -e "$file" ] || return 0
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then
        say "$file is not a readable file: ignored"
        return 0
    fi
    size=$(stat -c %s -- "$file") || return 0
    if [ "$size" -gt "$claude_env_max_bytes" ]; then
        say "$file is larger than $claude_env_max_bytes bytes: ignored"
        return 0
    fi
    # bash's read would drop NUL bytes silently and join what surrounds them.
    nuls=$(tr -dc '\000' <"$file" | wc -c)
    if [ "$nuls" -ne 0 ]; then
        say "$file holds NUL bytes: ignored"
        return 0
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        [ -z "$line" ] && continue
        [ "${line:0:1}" = "#" ] && continue
        if [[ "$line" != *=* ]]; then
            say "claude.env line $n: no '=': ignored"
            continue
        fi
        key=${line%%=*}
        value=${line#*=}
        if ! is_claude_env_key "$key"; then
            say "claude.env line $n: unknown key \"$(printable_key "$key")\": ignored"
            continue
        fi
        if [ -n "${seen[$key]:-}" ]; then
            say "claude.env line $n: $key appears again (line ${seen[$key]}): ignored"
            continue
        fi
        if ! is_token "$value" || [ "${#value}" -gt "$claude_env_max_value" ]; then
            say "claude.env line $n: the value of $key is not 1..$claude_env_max_value printable ASCII bytes without spaces: ignored"
            continue
        fi
        seen[$key]=$n
        export "$key=$value"
    done <"$file"
    # auth-set writes one kind; should both be there, the API key wins.
    if [ -n "${seen[ANTHROPIC_API_KEY]:-}" ] && [ -n "${seen[CLAUDE_CODE_OAUTH_TOKEN]:-}" ]; then
        say "claude.env line ${seen[CLAUDE_CODE_OAUTH_TOKEN]}: CLAUDE_CODE_OAUTH_TOKEN next to ANTHROPIC_API_KEY: ignored"
        unset CLAUDE_CODE_OAUTH_TOKEN
    fi
    return 0
}

# ---- the session's home, run as claude (prepare-home) ----

# The agent's shared login, copied once into a session that has none. The
# destination is created exclusively (link(2) of a private temporary file),
# so whatever the session put there, even a dangling symlink, is kept.
copy_shared_credentials() {
    local src=$home/.claude-shared/.credentials.json dir=$home/.claude tmp
    local dst=$dir/.credentials.json
    [ -f "$src" ] || return 0
    [ -e "$dst" ] || [ -L "$dst" ] && return 0
    if [ -L "$dir" ] || { [ -e "$dir" ] && [ ! -d "$dir" ]; }; then
        say "$dir is not a directory: the shared login is not copied"
        return 0
    fi
    if [ ! -d "$dir" ]; then
        mkdir -m 0700 -- "$dir" || return 0
    fi
    tmp=$(mktemp -- "$dir/.credentials.json.convocate.XXXXXX") || return 0
    if cat -- "$src" >"$tmp" && chmod 0600 -- "$tmp" && ln -- "$tmp" "$dst" 2>/dev/null; then
        say "copied the shared Claude login into ~/.claude/"
    else
        say "could not copy the shared Claude login into ~/.claude/"
    fi
    rm -f -- "$tmp"
}

# First-run keys of ~/.claude.json, each added only when absent: onboarding
# done, /home/claude trusted, and the configured API key approved (Claude
# compares its last 20 characters). The key's tail comes in through the
# environment, never argv.
# shellcheck disable=SC2016 # $ENV is jq's, not the shell's
claude_json_merge='
  (if has("hasCompletedOnboarding") then . else .hasCompletedOnboarding = true end)
  | if (.projects // {} | type) == "object"
       and (.projects["/home/claude"] // {} | type) == "object" then
      if (.projects["/home/claude"] // {} | has("hasTrustDialogAccepted")) then .
      else .projects["/home/claude"].hasTrustDialogAccepted = true end
    else . end
  | ($ENV.CONVOCATE_API_KEY_TAIL // "") as $tail
  | if $tail == "" then .
    elif (.customApiKeyResponses // {} | type) == "object"
         and (.customApiKeyResponses.approved // [] | type) == "array" then
      if any((.customApiKeyResponses.approved // [])[]; . == $tail) then .
      else .customApiKeyResponses.approved = ((.customApiKeyResponses.approved // []) + [$tail])
        | if (.customApiKeyResponses | has("rejected")) then .
          else .customApiKeyResponses.rejected = [] end
      end
    else . end'

merge_claude_json() {
    local file=$home/.claude.json tmp
    if [ -L "$file" ] || { [ -e "$file" ] && [ ! -f "$file" ]; }; then
        say "$file is not a regular file: left alone"
        return 0
    fi
    if [ -e "$file" ] && ! jq -e -s 'length == 1 and (.[0] | type) == "object"' \
        "$file" >/dev/null 2>&1; then
        say "$file is not one JSON object: left alone"
        return 0
    fi
    tmp=$(mktemp -- "$home/.claude.json.convocate.XXXXXX") || return 0
    if [ -e "$file" ]; then
        jq "$claude_json_merge" "$file" >"$tmp"
    else
        jq -n "{} | $claude_json_merge" >"$tmp"
    fi || {
        say "could not merge $file: left alone"
        rm -f -- "$tmp"
        return 0
    }
    # Unchanged: no write at all (it is merged at every start).
    if [ -e "$file" ] && jq -e -n --slurpfile a "$file" --slurpfile b "$tmp" '$a == $b' \
        >/dev/null 2>&1; then
        rm -f -- "$tmp"
        return 0
    fi
    if chmod 0600 -- "$tmp" && sync -- "$tmp" && mv -f -T -- "$tmp" "$file"; then
        sync -- "$home" 2>/dev/null
    else
        say "could not write $file"
        rm -f -- "$tmp"
    fi
}

prepare_home() {
    if [ "$(id -u)" -eq 0 ]; then
        say "prepare-home runs as claude, not root"
        exit 1
    fi
    umask 077
    cd "$home" || exit 1
    copy_shared_credentials
    merge_claude_json
    exit 0
}

# ---- PID 1 ----

session_command() {
    if [ -x /usr/local/bin/claude ] && [ -x "$supervisor" ]; then
        echo "exec $supervisor"
    else
        echo "exec bash --login"
    fi
}

# tmux as claude, its server's environment holding claude.env's keys. They
# are exported in a subshell only: never argv, never PID 1's environment.
start_tmux() {
    (
        export_claude_env
        # The binary is a read-only mount: it cannot and must not update or
        # "repair" itself; and nothing non-essential leaves the container
        # (the plugin marketplace is not fetched into every new home).
        export DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
            DISABLE_INSTALLATION_CHECKS=1 CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL=1
        # Claude remembers an approved key by its last 20 characters.
        api_key=${ANTHROPIC_API_KEY:-}
        if [ "${#api_key}" -gt 20 ]; then
            export CONVOCATE_API_KEY_TAIL=${api_key: -20}
        else
            export CONVOCATE_API_KEY_TAIL=$api_key
        fi
        unset api_key
        [ -x /usr/local/bin/claude ] && as_claude "$0" prepare-home
        unset CONVOCATE_API_KEY_TAIL
        # No Claude: the pane is a shell, and the activity says so (SPEC 16).
        if [ ! -x /usr/local/bin/claude ] && [ -x "$activity_hook" ]; then
            as_claude "$activity_hook" shell "" </dev/null
        fi
        as_claude tmux new-session -d -s claude -x 200 -y 50 "$(session_command)"
        # tmux takes keys that arrive within assume-paste-time (1 ms) of each
        # other as pasted and runs no binding for them. Ctrl-b d reaches it
        # through SSH and the agent's relay, where a busy host or a slow link
        # can put both keys in one packet: the detach would land in the shell.
        as_claude tmux set-option -g assume-paste-time 0 ||
            say "tmux: cannot set assume-paste-time; Ctrl-b d may be taken as a paste"
    )
}

# docker stop. Claude is asked to exit first (SIGTERM, its terminal still
# there) and waited for, within docker stop's 10 s: it writes to its
# transcript as it exits, and PID 1 leaving at once would SIGKILL it
# mid-way. (Claude 2.1 may still lose an exchange that ended a few ms
# before the stop: it writes the transcript a moment after drawing it.)
claude_cli_pattern='^/usr/local/bin/claude( |$)'
stop_session() {
    local i
    if pkill -TERM -u claude -f "$claude_cli_pattern"; then
        for ((i = 0; i < 80; i++)); do
            pgrep -u claude -f "$claude_cli_pattern" >/dev/null || break
            sleep 0.1
        done
    fi
    as_claude tmux kill-server 2>/dev/null
    exit 0
}

if [ "${1:-}" = prepare-home ]; then
    prepare_home
fi

make_claude || {
    say "could not create the claude user"
    exit 1
}
cd "$home" || exit 1
start_tmux || {
    say "tmux could not start"
    exit 1
}

trap stop_session TERM INT HUP
# Poll rather than block on tmux: the session may be ended from inside
# (exit, kill-session) or from outside (docker exec), and both must end us.
while as_claude tmux has-session -t claude 2>/dev/null; do
    sleep 1 &
    wait $!
done
say "tmux session ended"
exit 0
