/*
 * pipe-client.c compiled for the argument harness: its main is renamed,
 * and fz_client_parse runs the tool's own parse() (static there) on a
 * configuration prepared the way its main prepares it.
 */
int fz_client_main(int argc, char **argv);
#define main fz_client_main
#include "../../tools/pipe-client.c"
#undef main

#include "fuzz-args.h"

const struct tl_option *fz_client_options = options;

int fz_client_parse(int argc, char **argv, struct fz_parsed *out) {
  struct client cl;
  uint32_t wait = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  int status;

  memset(&cl, 0, sizeof(cl));
  cl.timeout_ms = -1;
  status = parse(argc, argv, &cl);
  out->address = cl.address;
  out->other = cl.listen_address != NULL ? cl.listen_address : cl.send_file;
  out->needs_other = 0;
  out->message = (cl.opts.flags & NP_OPT_MESSAGE) != 0;
  /* What check() promises: --listen alone, --progress with --send, and a
   * timeout always comes with a wait. */
  out->bad_combination =
      (cl.listen_address != NULL &&
       (cl.send_file != NULL || cl.relay_flags != 0 || cl.half_close)) ||
      (cl.progress && cl.send_file == NULL) ||
      (cl.timeout_ms >= 0 && (cl.opts.flags & wait) == 0) ||
      cl.opts.timeout_ms != cl.timeout_ms;
  return status;
}
