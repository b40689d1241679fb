#!/usr/bin/env bash
# make demo: a shell and an agent on this machine, the TUI in the foreground.
#
#   scripts/demo.sh          set up (idempotent), start both daemons, open the TUI;
#                            quitting the TUI stops the daemons, sessions stay in Docker
#   scripts/demo.sh stop     stop daemons left running by DEMO_NO_TUI=1
#
# It uses the same code an operator would: `convocate install`,
# `convocate-host init-shell` and `init-agent`, under one demo directory, with
# the daemons on loopback ports so the host's own sshd (22) and any real
# convocate (222, 223) are left alone.
#
# Environment:
#   DEMO_ROOT=/var/lib/convocate-demo   where the shell's and the agent's files live
#   DEMO_AGENT_PORT=2222 DEMO_STATUS_PORT=2223
#   DEMO_IMAGE=TAG      use this session image instead of building convocate:vX.Y.Z
#   DEMO_NO_TUI=1       set up and start the daemons, then return (tests, scripts)
#   DEMO_CLAUDE=PATH    the Claude CLI sessions run (the agent's /usr/local/bin/claude);
#   DEMO_CLAUDE=none    no Claude: sessions open a login shell;
#                       unset: this machine's `claude` when it is on the PATH
#   ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (+ ANTHROPIC_BASE_URL, ANTHROPIC_MODEL)
#                       when set, written into the demo agent's claude.env (SPEC 15)
#   BUILD=build         the meson build directory
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
demo_root=${DEMO_ROOT:-/var/lib/convocate-demo}
shell_root="$demo_root/shell"
agent_root="$demo_root/agent"
run_dir="$demo_root/run"
log_dir="$demo_root/log"
agent_port=${DEMO_AGENT_PORT:-2222}
status_port=${DEMO_STATUS_PORT:-2223}

say() { echo "demo: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Stops the daemons this demo started, by the PIDs it recorded, and only
# when that PID still runs one of our programs.
stop_daemons() {
    local name pid
    for name in convocate-agent status-serve; do
        [ -f "$run_dir/$name.pid" ] || continue
        pid=$(cat "$run_dir/$name.pid")
        if [[ "$pid" =~ ^[0-9]+$ ]] && grep -q convocate "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            say "stopped $name (pid $pid)"
        fi
        rm -f "$run_dir/$name.pid"
    done
}

# The agent's /usr/local/bin/claude under its --root, which the agent
# bind-mounts into sessions when it exists: a link to the chosen CLI, or
# nothing (a login shell).
place_claude() {
    local dest="$agent_root/usr/local/bin/claude" src
    case "${DEMO_CLAUDE-}" in
    none)
        rm -f "$dest"
        say "DEMO_CLAUDE=none: sessions open a login shell"
        return 0
        ;;
    "")
        if [ -n "${DEMO_CLAUDE+set}" ]; then
            die "DEMO_CLAUDE is empty: give a path, or none"
        fi
        if ! src=$(command -v claude); then
            rm -f "$dest"
            say "no 'claude' on PATH: sessions open a shell (see README, 'The Claude CLI')"
            return 0
        fi
        ;;
    *) src=$DEMO_CLAUDE ;;
    esac
    src=$(readlink -f "$src") || die "cannot resolve $src"
    if [ ! -f "$src" ] || [ ! -x "$src" ]; then
        die "DEMO_CLAUDE: $src is not an executable file"
    fi
    mkdir -p "$agent_root/usr/local/bin"
    ln -sfn "$src" "$dest"
    say "sessions run the Claude CLI $src"
}

# claude.env as the agent's auth-set writes it (docs/claude-env-contract.md):
# root 0600, KEY=VALUE lines, replaced atomically. Only the names are logged.
write_claude_env() {
    local dir="$agent_root/etc/convocate-agent" file tmp key value
    local -a keys=()
    if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
        keys=(ANTHROPIC_API_KEY)
        if [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; then
            say "both ANTHROPIC_API_KEY and CLAUDE_CODE_OAUTH_TOKEN are set: the API key is used"
        fi
    elif [ -n "${CLAUDE_CODE_OAUTH_TOKEN:-}" ]; then
        keys=(CLAUDE_CODE_OAUTH_TOKEN)
    else
        return 0 # an existing claude.env (convocate auth set) stays as it is
    fi
    for key in ANTHROPIC_BASE_URL ANTHROPIC_MODEL; do
        if [ -n "${!key:-}" ]; then keys+=("$key"); fi
    done
    for key in "${keys[@]}"; do
        value=${!key}
        if [ "${#value}" -gt 4096 ] || [ -n "$(printf '%s' "$value" | LC_ALL=C tr -d '!-~')" ]; then
            die "$key is not 1..4096 printable ASCII bytes without spaces"
        fi
    done
    file="$dir/claude.env"
    tmp=$(umask 077 && mktemp "$dir/.claude.env.XXXXXX") || die "cannot write in $dir"
    if ! {
        echo "# written by make demo"
        for key in "${keys[@]}"; do
            printf '%s=%s\n' "$key" "${!key}"
        done
    } >"$tmp" || ! chmod 0600 "$tmp" || ! chown 0:0 "$tmp" || ! sync "$tmp" ||
        ! mv -f -T "$tmp" "$file"; then
        rm -f "$tmp"
        die "cannot write $file"
    fi
    sync "$dir"
    say "wrote $file (${keys[*]})"
}

if [ "${1:-}" = stop ]; then
    stop_daemons
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root (Docker, the claude user and bind mounts need it)"
    say "re-running as root through sudo"
    # Through the environment, never argv: the credentials are secrets.
    exec sudo --preserve-env=DEMO_ROOT,DEMO_AGENT_PORT,DEMO_STATUS_PORT,DEMO_IMAGE,DEMO_NO_TUI,DEMO_CLAUDE,BUILD,ANTHROPIC_API_KEY,CLAUDE_CODE_OAUTH_TOKEN,ANTHROPIC_BASE_URL,ANTHROPIC_MODEL \
        bash "$0" "$@"
fi

say "[1/5] dependencies (apt, dockerd)"
bash "$repo/scripts/install-deps.sh" >&2

say "[2/5] build"
[ -f "$build/build.ninja" ] || meson setup "$build" >&2
ninja -C "$build" >&2
bin="$build/src"

say "[3/5] session image"
if [ -n "${DEMO_IMAGE:-}" ]; then
    image=$DEMO_IMAGE
else
    say "building convocate:v$(cat "$repo/VERSION") (first time: several minutes; cached afterwards)"
    image=$(bash "$repo/scripts/build-image.sh" full) || die "the session image could not be built"
fi

say "[4/5] shell and agent under $demo_root"
stop_daemons # a previous demo left running
mkdir -p "$shell_root" "$agent_root" "$run_dir" "$log_dir"
"$bin/convocate" --root "$shell_root" install >&2
"$bin/convocate-host" init-shell --root "$shell_root" >&2
"$bin/convocate-host" init-agent --root "$shell_root" --agent-root "$agent_root" \
    --agent-addr "127.0.0.1:$agent_port" --shell-host "127.0.0.1:$status_port" >&2
echo "$image" >"$agent_root/etc/convocate-agent/current-image.tmp"
mv -f "$agent_root/etc/convocate-agent/current-image.tmp" "$agent_root/etc/convocate-agent/current-image"
place_claude
write_claude_env

say "[5/5] daemons on 127.0.0.1:$agent_port (agent) and 127.0.0.1:$status_port (status)"
# setsid: the daemons do not get the terminal's Ctrl-C meant for the TUI.
# Waits up to 10 s for a daemon's port; dies naming its log otherwise.
wait_listening() {
    local port=$1 what=$2 log=$3
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what did not start listening; see $log"
}
setsid "$bin/convocate" --root "$shell_root" status-serve --listen "127.0.0.1:$status_port" -v \
    </dev/null >>"$log_dir/status-serve.log" 2>&1 &
echo $! >"$run_dir/status-serve.pid"
# The agent dials status-serve at once: start it when there is something to dial.
wait_listening "$status_port" "status-serve" "$log_dir/status-serve.log"
setsid "$bin/convocate-agent" serve --root "$agent_root" --listen "127.0.0.1:$agent_port" -v \
    </dev/null >>"$log_dir/convocate-agent.log" 2>&1 &
echo $! >"$run_dir/convocate-agent.pid"
wait_listening "$agent_port" "the agent" "$log_dir/convocate-agent.log"

if [ "${DEMO_NO_TUI:-0}" = 1 ]; then
    cat >&2 <<EOF
demo: up. Try:
  $bin/convocate --root $shell_root new hello
  $bin/convocate --root $shell_root attach hello      (detach: Ctrl-b d)
  $bin/convocate --root $shell_root                   (the TUI)
demo: logs in $log_dir; stop the daemons with 'make demo-stop'
EOF
    exit 0
fi

trap stop_daemons EXIT
"$bin/convocate" --root "$shell_root" || true
say "TUI closed; sessions keep running in Docker (docker ps); 'make demo' finds them again"
