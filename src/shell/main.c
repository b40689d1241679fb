/* convocate: the shell host's program (SPEC 2): the TUI, status-serve, install,
 * and the one-shot CLI forms of every TUI action. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/paths.h"
#include "shell/cli.h"
#include "shell/cli_auth.h"
#include "shell/install.h"
#include "shell/status_serve.h"
#include "shell/tui/tui.h"
#include "version.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: convocate [--root DIR] [-v] [command [args]]\n"
        "\n"
        "With no command, opens the terminal UI over every registered agent\n"
        "(Up/Down, PgUp/PgDn, Home/End move; / filters the table by name, agent or\n"
        "state as you type, Enter keeps the filter, Esc clears it; the other keys are\n"
        "in its key menu and in convocate(1)).\n"
        "\n"
        "sessions (NAME is a session name or a unique UUID prefix):\n"
        "  ls [--json]                       every session on every agent, newest first;\n"
        "                                    O = orphan: a session directory on this shell\n"
        "                                    host that no reachable agent lists (a down agent\n"
        "                                    may own it); 'convocate-host migrate-session'.\n"
        "                                    --json asks status-serve, which keeps every\n"
        "                                    agent's connection open, when it runs here\n"
        "                                    (CONVOCATE_LS_DIRECT=1: ask the agents from here)\n"
        "  ls --names                        the session names last listed, from a local cache\n"
        "                                    (no network: for shell completion)\n"
        "  agents [--json]                   registered agents with health and capacity\n"
        "  new NAME [--agent ID] [--port P] [--proto tcp|udp] [--dns NAME]\n"
        "           [--model M] [--autonomous | --no-autonomous]\n"
        "                                    create a session (--port -1 picks a free one;\n"
        "                                    --model: the Claude model, 1 to 64 of\n"
        "                                    A-Z a-z 0-9 . _ -; --autonomous: Claude runs\n"
        "                                    without asking permission; neither flag: the\n"
        "                                    agent's default_autonomous setting)\n"
        "  attach NAME                       attach this terminal (detach: Ctrl-b d)\n"
        "  kill NAME                         stop the container, keep the home directory\n"
        "  restart NAME                      start the container detached\n"
        "  bg NAME                           detach every operator, keep it running\n"
        "  override NAME                     remove the session's lock file\n"
        "  delete NAME [--yes]               stop it and remove its home directory\n"
        "  clone NAME NEW-NAME               copy a session's home to a new session\n"
        "  edit NAME [--name N] [--port P] [--proto tcp|udp] [--dns NAME]\n"
        "            [--model M] [--autonomous | --no-autonomous]\n"
        "                                    change a session (--model \"\" clears the model);\n"
        "                                    a running container keeps its old settings\n"
        "                                    until restart\n"
        "  peek NAME [--lines N] [--color]   print the session's screen without attaching\n"
        "                                    (N lines of history too; colours kept on a\n"
        "                                    terminal or with --color)\n"
        "  send NAME TEXT|- [--no-enter]     type TEXT ('-' = stdin) into the session, then\n"
        "                                    Enter unless --no-enter\n"
        "  watch [--json]                    one line per activity change on every agent,\n"
        "                                    from the local feed (--json: the raw events)\n"
        "\n"
        "Claude credentials (see 'convocate auth --help'):\n"
        "  auth set [--agent ID | --all] (--api-key-file F | --oauth-token-file F)\n"
        "           [--base-url URL] [--model M]\n"
        "                                    store the secret read from F ('-' = stdin)\n"
        "  auth status [--json]              kind, hint, base URL and model per agent\n"
        "  auth clear [--agent ID | --all]   remove an agent's credentials\n"
        "\n"
        "agent settings:\n"
        "  settings [--agent ID | --all] [--json]\n"
        "                                    each agent's settings (default: every agent)\n"
        "  settings [--agent ID | --all] [--json] KEY=VALUE...\n"
        "                                    change them (settings-set; with several agents,\n"
        "                                    choose one or --all). VALUE is typed: true,\n"
        "                                    false, an integer, a decimal (1.5), a JSON string\n"
        "                                    in double quotes (\"90\" stays text), else text.\n"
        "                                    Keys: admission_threshold_pct (50..95),\n"
        "                                    heartbeat_s (5..300), docker_socket,\n"
        "                                    default_autonomous (true|false), session_cpus,\n"
        "                                    session_memory_mb (0 = no limit), dns_server\n"
        "                                    (IPv4, empty = the engine's)\n"
        "\n"
        "host:\n"
        "  install [--dry-run] [--build-image]  prepare this host as a shell host\n"
        "  status-serve [--listen ADDR:PORT] [--host-key PATH] [--auth-keys PATH] [--feed PATH]\n"
        "                                    the tcp/223 listener for agents' status events\n"
        "\n"
        "other:\n"
        "  version                           print the version\n"
        "  help                              print this text\n"
        "\n"
        "options:\n"
        "  --root DIR     take every host path under DIR (env CONVOCATE_ROOT, default /)\n"
        "  -v, --verbose  log debug detail\n"
        "\n"
        "Agents are read from /etc/convocate/agent-keys/<agent-id>/ (see README.md).\n");
}

/* `convocate <command> --help` (before any "--"): the usage above. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *root = getenv("CONVOCATE_ROOT");
    bool verbose = false;
    int i = 1;
    /* Global options come before the command so command options stay its own. */
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            root = argv[++i];
        else if (strncmp(argv[i], "--root=", 7) == 0)
            root = argv[i] + 7;
        else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)
            verbose = true;
        else
            break;
    }
    if (paths_set_root(root) < 0) {
        fprintf(stderr, "convocate: --root path is too long\n");
        return EXIT_USAGE;
    }
    log_init("convocate", verbose);
    if (i >= argc) {
        return tui_run();
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("convocate version %s\n", CONVOCATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "install") == 0)
        return shell_install_main(argc - i, argv + i);
    if (strcmp(cmd, "status-serve") == 0)
        return status_serve_main(argc - i, argv + i);
    if (strcmp(cmd, "auth") == 0 && cli_auth_wants_help(argc - i, argv + i)) {
        cli_auth_usage(stdout);
        return 0;
    }
    if (cli_is_command(cmd) && wants_help(argc - i, argv + i)) {
        usage(stdout);
        return 0;
    }
    if (cli_is_command(cmd))
        return cli_run(argc - i, argv + i);
    fprintf(stderr, "convocate: unknown command \"%s\" (try 'convocate help')\n", cmd);
    return EXIT_USAGE;
}
