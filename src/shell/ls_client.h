/* The CLI's side of the ls service (ls_service.h): `convocate ls --json`
 * asks status-serve, which holds a connection to every agent, and dials the
 * agents itself only when no service answers. */
#ifndef CONVOCATE_SHELL_LS_CLIENT_H
#define CONVOCATE_SHELL_LS_CLIENT_H

#include <stddef.h>
#include <stdio.h>

/* The CLI's wait for the whole list: an unanswering agent costs the service
 * its 60 s call timeout, then the answer still has to come. */
#define LS_CLIENT_TIMEOUT_S 90

enum ls_client_result {
    LS_CLIENT_PRINTED,    /* the list is on out and its warnings on stderr */
    LS_CLIENT_NO_SERVICE, /* nothing listens at path (status-serve is not running) */
    LS_CLIENT_FAILED,     /* the service did not give a whole answer: err says why;
                             nothing was printed */
    LS_CLIENT_UNWRITTEN,  /* the answer was whole but out refused it: err says why */
};

/* Asks the service at path; *sessions and *agents are set when printed.
 * Waits at most timeout_s for the whole answer. */
enum ls_client_result ls_client_print(const char *path, int timeout_s, FILE *out, size_t *agents,
                                      size_t *sessions, char *err, size_t errlen);

#endif
