/* What the argument harness learns from one tool's parse(). */
#ifndef NP_FUZZ_ARGS_H
#define NP_FUZZ_ARGS_H

#include "tools.h"

struct fz_parsed {
  const char *address; /* the positional ADDRESS */
  const char *other;   /* --exec/--forward, --listen/--send value */
  int needs_other;     /* the mode requires other */
  int message;         /* NP_OPT_MESSAGE is set */
  int bad_combination; /* a state parse() must have refused */
};

extern const struct tl_option *fz_server_options;
extern const struct tl_option *fz_client_options;
/* Run the tool's parse(); return its status (0, -1 or TL_EXIT_USAGE). */
int fz_server_parse(int argc, char **argv, struct fz_parsed *out);
int fz_client_parse(int argc, char **argv, struct fz_parsed *out);

#endif
