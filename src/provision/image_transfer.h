/* Shipping the session image to an agent (SPEC 11, "Image transfer"):
 * docker save | gzip here with its SHA-256, upload to
 * /tmp/convocate-image-<sha256>.tar.gz on the target, verify the digest
 * there, gunzip | docker load, check the loaded image ID, remove the file. */
#ifndef CONVOCATE_PROVISION_IMAGE_TRANSFER_H
#define CONVOCATE_PROVISION_IMAGE_TRANSFER_H

#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define IMAGE_TAG_MAX 255

/* A tag we are willing to put on a command line: repository[:tag] made of
 * [A-Za-z0-9._/:@-], not starting with '-'. */
bool image_tag_is_valid(const char *tag);

/* The ID ("sha256:<hex>") the engine on r's target gives tag, from
 * `docker image inspect`: 0, or -1 when it has no such image (or no engine). */
int image_id(runner *r, const char *tag, char *id, size_t size);

/* Checks that tag exists on this machine's engine; -1 after a message. */
int image_check_local(plan *p, const char *tag);

/* Makes the target's engine hold tag with the same image ID as here. The
 * copy is skipped ("unchanged") when it already does and its current-image
 * names the tag; an image present but not yet adopted is loaded again,
 * which is harmless and proves the path. On failure nothing is stamped by
 * the caller; a file that failed verification is kept for inspection. */
int image_transfer_step(plan *p, runner *r, const char *tag);

#endif
