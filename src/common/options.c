/*
 * np_options: defaults and validation, once, before any system call.
 */
#include "config.h"

#include "internal.h"

#define KNOWN_FLAGS                                                           \
  (NP_OPT_MESSAGE | NP_OPT_ALLOW_REMOTE | NP_OPT_WAIT_BUSY |                  \
   NP_OPT_WAIT_ABSENT | NP_OPT_ANY_USER | NP_OPT_ALLOW_UID | NP_OPT_ANY_SERVER |  \
   NP_OPT_IMPERSONATE)

int np__options_resolve(const np_options *opts, struct np__opts *out) {
  static const np_options defaults;

  if (opts == NULL)
    opts = &defaults;
  if ((opts->flags & ~KNOWN_FLAGS) != 0 || opts->backlog < 0 ||
      opts->backlog > NP__MAX_BACKLOG || (opts->mode & ~0777u) != 0)
    return NP_EINVAL;
  out->flags = opts->flags;
  out->backlog = opts->backlog != 0 ? opts->backlog : NP__DEFAULT_BACKLOG;
  out->timeout_ms = opts->timeout_ms;
  out->write_limit =
      opts->write_limit != 0 ? opts->write_limit : NP__DEFAULT_WRITE_LIMIT;
  out->sddl = opts->sddl;
  out->allow_uid = opts->allow_uid;
  out->mode = opts->mode != 0 ? opts->mode : 0600u;
  out->linger_ms = opts->linger_ms == 0  ? NP__DEFAULT_LINGER_MS
                   : opts->linger_ms < 0 ? -1
                                         : opts->linger_ms;
  return 0;
}
