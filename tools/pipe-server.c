/*
 * pipe-server: listen on an npipe address and serve each client by
 * relaying it to standard input and output, echoing it, running a
 * command for it, or forwarding it to another address.  See
 * pipe-server(1).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

enum {
  OPT_ECHO = 1,
  OPT_EXEC,
  OPT_FORWARD,
  OPT_MAX_CLIENTS,
  OPT_THREADS,
  OPT_BACKLOG,
  OPT_ONCE,
  OPT_MESSAGE,
  OPT_ALLOW_REMOTE,
  OPT_SDDL,
  OPT_ALLOW_UID,
  OPT_ANY_USER,
  OPT_MODE,
  OPT_ALLOW_USER,
  OPT_VERBOSE,
  OPT_STATS,
  OPT_HELP,
  OPT_VERSION
};

static const struct tl_option options[] = {
    {"echo", 0, TL_ARG_NONE, OPT_ECHO},
    {"exec", 0, TL_ARG_REQUIRED, OPT_EXEC},
    {"forward", 0, TL_ARG_REQUIRED, OPT_FORWARD},
    {"max-clients", 0, TL_ARG_REQUIRED, OPT_MAX_CLIENTS},
    {"threads", 0, TL_ARG_REQUIRED, OPT_THREADS},
    {"backlog", 0, TL_ARG_REQUIRED, OPT_BACKLOG},
    {"once", 0, TL_ARG_NONE, OPT_ONCE},
    {"message", 0, TL_ARG_NONE, OPT_MESSAGE},
    {"allow-remote", 0, TL_ARG_NONE, OPT_ALLOW_REMOTE},
    {"sddl", 0, TL_ARG_REQUIRED, OPT_SDDL},
    {"allow-uid", 0, TL_ARG_REQUIRED, OPT_ALLOW_UID},
    {"any-user", 0, TL_ARG_NONE, OPT_ANY_USER},
    {"mode", 0, TL_ARG_REQUIRED, OPT_MODE},
    {"allow-user", 0, TL_ARG_REQUIRED, OPT_ALLOW_USER},
    {"verbose", 'v', TL_ARG_NONE, OPT_VERBOSE},
    {"stats", 0, TL_ARG_NONE, OPT_STATS},
    {"help", 'h', TL_ARG_NONE, OPT_HELP},
    {"version", 'V', TL_ARG_NONE, OPT_VERSION},
    {NULL, 0, TL_ARG_NONE, 0}};

static void usage(void) {
  printf("Usage: %s ADDRESS [options]\n"
         "Serve clients on ADDRESS (pipe:NAME, \\\\.\\pipe\\NAME, "
         "tcp:HOST:PORT%s)\nin one of these ways.\n"
         "\n"
         "  (default)           relay one client at a time to stdin/stdout\n"
         "  --echo              echo every client, many at once\n"
         "  --exec COMMAND      run COMMAND for each client\n"
         "  --forward ADDRESS2  relay each client to a new connection\n"
         "  --max-clients N     serve at most N clients at once\n"
         "  --threads N         serve them on N threads (1-64, default 1)\n"
         "  --backlog N         pipe instances waiting for clients (1-255)\n"
         "  --once              serve one client, then exit\n"
         "  --message           message mode\n",
         tl_prog, tl_sys_windows ? "" : ", unix:PATH");
  if (tl_sys_windows)
    printf("  --allow-remote      accept clients from other machines\n"
           "  --sddl SDDL         security descriptor for the pipe\n");
  else
    printf("  --allow-uid UID     also accept clients of user UID\n"
           "  --any-user          accept clients of every user\n"
           "  --mode MODE         socket permissions, octal (default "
           "0600)\n");
  printf("  --allow-user NAME   serve only these accounts (repeatable)\n"
         "  -v, --verbose       report clients on stderr\n"
         "  --stats             report bytes and rates per client\n"
         "  -h, --help          show this help\n"
         "  -V, --version       show the version\n"
         "\n"
         "Exit status: 0 done, 1 runtime error, 2 usage error, 3 forward "
         "failed (--once).\n");
}

/* Options that exist on one system only are refused on the other. */
static int check_system(const char *name, int windows_only) {
  if (windows_only != tl_sys_windows)
    return tl_usage_error("option '--%s' is only available on %s", name,
                          windows_only ? "Windows" : "POSIX systems");
  return 0;
}

static int set_mode(struct tl_server_config *cfg, enum tl_serve_mode mode) {
  if (cfg->mode != TL_SERVE_STDIO && cfg->mode != mode)
    return tl_usage_error("--echo, --exec and --forward cannot be combined");
  cfg->mode = mode;
  return 0;
}

static int parse_mode_bits(const char *text, unsigned *mode) {
  char *end;
  unsigned long v = strtoul(text, &end, 8);

  if (text[0] < '0' || text[0] > '7' || *end != '\0' || v > 0777)
    return tl_usage_error("invalid value '%s' for --mode (octal, at most "
                          "0777)",
                          text);
  *mode = (unsigned)v;
  return 0;
}

/* Handles one option; returns 0, or an exit status to stop with (-1 for
 * a clean exit after --help or --version). */
static int apply(struct tl_server_config *cfg, int id, const char *value) {
  long n;
  int err = 0;

  switch (id) {
  case OPT_ECHO:
    return set_mode(cfg, TL_SERVE_ECHO);
  case OPT_EXEC:
    /* Found now, not once per client. */
    if (value[strspn(value, " \t")] == '\0')
      return tl_usage_error("--exec needs a command");
    cfg->exec_command = value;
    return set_mode(cfg, TL_SERVE_EXEC);
  case OPT_FORWARD:
    cfg->forward_address = value;
    return set_mode(cfg, TL_SERVE_FORWARD);
  case OPT_MAX_CLIENTS:
    if ((err = tl_parse_long("max-clients", value, 1, 1000000, &n)) == 0)
      cfg->max_clients = (int)n;
    return err;
  case OPT_THREADS:
    if ((err = tl_parse_long("threads", value, 1, 64, &n)) == 0)
      cfg->threads = (int)n;
    return err;
  case OPT_BACKLOG:
    if ((err = tl_parse_long("backlog", value, 1, 255, &n)) == 0)
      cfg->listen_opts.backlog = (int)n;
    return err;
  case OPT_ONCE:
    cfg->once = 1;
    return 0;
  case OPT_MESSAGE:
    cfg->listen_opts.flags |= NP_OPT_MESSAGE;
    return 0;
  case OPT_ALLOW_REMOTE:
    cfg->listen_opts.flags |= NP_OPT_ALLOW_REMOTE;
    return check_system("allow-remote", 1);
  case OPT_SDDL:
    cfg->listen_opts.sddl = value;
    return check_system("sddl", 1);
  case OPT_ALLOW_UID:
    if ((err = check_system("allow-uid", 0)) == 0 &&
        (err = tl_parse_long("allow-uid", value, 0, 0x7fffffffL, &n)) == 0) {
      cfg->listen_opts.flags |= NP_OPT_ALLOW_UID;
      cfg->listen_opts.allow_uid = (uint32_t)n;
    }
    return err;
  case OPT_ANY_USER:
    cfg->listen_opts.flags |= NP_OPT_ANY_USER;
    return check_system("any-user", 0);
  case OPT_MODE:
    if ((err = check_system("mode", 0)) == 0)
      err = parse_mode_bits(value, &cfg->listen_opts.mode);
    return err;
  case OPT_ALLOW_USER:
    if (value[0] == '\0')
      return tl_usage_error("--allow-user needs an account name");
    if (cfg->nallow_users == TL_ALLOW_USERS_MAX)
      return tl_usage_error("at most %d --allow-user options",
                            TL_ALLOW_USERS_MAX);
    cfg->allow_users[cfg->nallow_users++] = value;
    return 0;
  case OPT_VERBOSE:
    tl_verbose = 1;
    return 0;
  case OPT_STATS:
    cfg->stats = 1;
    return 0;
  case OPT_HELP:
    usage();
    return -1;
  default:
    printf("%s (npipe) %s, library %s\n", tl_prog, NPIPE_VERSION_STRING,
           np_version_string());
    return -1;
  }
}

static int parse(int argc, char **argv, struct tl_server_config *cfg) {
  struct tl_args a;
  const char *value;
  uint32_t message;
  int id, err;

  tl_args_init(&a, argc, argv);
  while ((id = tl_args_next(&a, options, &value)) != TL_ARGS_END) {
    if (id == TL_ARGS_ERROR)
      return TL_EXIT_USAGE;
    if (id == TL_ARGS_POSITIONAL) {
      if (cfg->listen_address != NULL)
        return tl_usage_error("unexpected argument '%s'", value);
      cfg->listen_address = value;
    } else if ((err = apply(cfg, id, value)) != 0) {
      return err;
    }
  }
  if (cfg->listen_address == NULL)
    return tl_usage_error("missing ADDRESS");
  if (cfg->mode == TL_SERVE_STDIO && cfg->max_clients > 1)
    return tl_usage_error("--max-clients needs --echo, --exec or --forward");
  /* Standard input and output serve one client at a time anyway. */
  if (cfg->mode == TL_SERVE_STDIO && cfg->threads > 1)
    return tl_usage_error("--threads needs --echo, --exec or --forward");
  /* Message mode applies to whichever sides are pipes. */
  message = cfg->listen_opts.flags & NP_OPT_MESSAGE;
  if (tl_address_is_tcp(cfg->listen_address))
    cfg->listen_opts.flags &= ~NP_OPT_MESSAGE;
  /* A pipe target that is busy (a burst of clients) or not there yet
   * (restarting) is waited for, within a bound, instead of dropping the
   * client at once. */
  if (cfg->mode == TL_SERVE_FORWARD &&
      !tl_address_is_tcp(cfg->forward_address)) {
    cfg->forward_opts.flags |=
        message | NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
    cfg->forward_opts.timeout_ms = TL_FORWARD_WAIT_MS;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct tl_server_config cfg;
  int status;

  tl_prog = "pipe-server";
  tl_sys_init();
  memset(&cfg, 0, sizeof(cfg));
  status = parse(argc, argv, &cfg);
  if (status != 0)
    return status < 0 ? TL_EXIT_OK : status;
  status = tl_serve(&cfg);
  tl_sys_quit();
  return status;
}
