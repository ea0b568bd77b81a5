/*
 * pipe-server.c compiled for the argument harness: its main is renamed,
 * and fz_server_parse runs the tool's own parse() (static there) on a
 * configuration prepared the way its main prepares it.
 */
int fz_server_main(int argc, char **argv);
#define main fz_server_main
#include "../../tools/pipe-server.c"
#undef main

#include "fuzz-args.h"

const struct tl_option *fz_server_options = options;

int fz_server_parse(int argc, char **argv, struct fz_parsed *out) {
  struct tl_server_config cfg;
  int status;

  memset(&cfg, 0, sizeof(cfg));
  status = parse(argc, argv, &cfg);
  out->address = cfg.listen_address;
  out->other = cfg.mode == TL_SERVE_EXEC      ? cfg.exec_command
               : cfg.mode == TL_SERVE_FORWARD ? cfg.forward_address
                                              : NULL;
  out->needs_other = cfg.mode == TL_SERVE_EXEC || cfg.mode == TL_SERVE_FORWARD;
  out->message = (cfg.listen_opts.flags & NP_OPT_MESSAGE) != 0;
  out->bad_combination =
      (cfg.mode == TL_SERVE_STDIO && cfg.max_clients > 1) ||
      cfg.listen_opts.backlog < 0 || cfg.listen_opts.backlog > 255 ||
      cfg.listen_opts.mode > 0777 || cfg.max_clients < 0 ||
      (cfg.listen_opts.flags & (NP_OPT_ALLOW_REMOTE)) != 0 ||
      cfg.listen_opts.sddl != NULL;
  return status;
}
