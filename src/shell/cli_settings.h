/* `convocate settings` (SPEC 7, 16): each agent's settings through its
 * settings-get op, and changes through settings-set with KEY=VALUE words
 * typed as JSON (cli_settings_value). Exit codes as the rest of the CLI:
 * 0 ok, 1 an agent failed or refused (its error verbatim on stderr), 2 usage
 * error. */
#ifndef CONVOCATE_SHELL_CLI_SETTINGS_H
#define CONVOCATE_SHELL_CLI_SETTINGS_H

#include <jansson.h>

#include "ssh/registry.h"

/* argv[0] is "settings". */
int cli_settings(agent_registry *r, int argc, char **argv);

/* The JSON value a VALUE word stands for: true / false; an integer
 * (-?[0-9]+ within 64 bits); a decimal number (digits with a '.' or an
 * exponent, finite); a JSON string literal when it starts and ends with '"'
 * (so "\"90\"" is the string 90); any other word, the empty one included,
 * is that string. NULL when a quoted word is not a valid JSON string. */
json_t *cli_settings_value(const char *word);

#endif
