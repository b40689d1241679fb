/* The Ubuntu live-server ISO create-vm boots the VM from (SPEC 11), kept in
 * a cache directory of this machine under its SHA-256: fetched once from a
 * path or URL the operator names (no address is built in), verified against
 * the digest the operator gives, reused while it still matches. */
#ifndef CONVOCATE_HOST_VM_ISO_CACHE_H
#define CONVOCATE_HOST_VM_ISO_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "provision/digest.h"
#include "provision/plan.h"

/* Larger than any live-server ISO by a margin, small enough to refuse a
 * URL that streams forever. */
#define ISO_MAX_BYTES (16LL * 1024 * 1024 * 1024)

/* 64 hex digits (either case); lower gets them lowercase. */
bool iso_sha256_parse(const char *s, char lower[SHA256_HEX_LEN + 1]);

/* $XDG_CACHE_HOME/convocate/iso, else $HOME/.cache/convocate/iso. */
int iso_cache_default_dir(char *out, size_t size);

/* DIR/<sha256>.iso, fetched from source (a path of this machine, or a
 * file://, http:// or https:// URL) when missing or no longer matching.
 * A download whose digest differs is deleted (the cache's other files are
 * left alone) and the step fails naming both digests. out gets the path. */
int iso_cache_step(plan *p, const char *source, const char *sha256, const char *dir, char *out,
                   size_t outlen);

#endif
