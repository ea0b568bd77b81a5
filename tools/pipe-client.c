/*
 * pipe-client: connect to an npipe address and relay standard input and
 * output (the npiperelay use), send a file, or listen locally and forward
 * each connection.  See pipe-client(1).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tools.h"

#define STREAM_END 0 /* ends[0]: the connection */
#define LOCAL_END 1  /* ends[1]: standard input and output, or the file */
#define PROGRESS_MS 200

enum {
  OPT_WAIT = 1,
  OPT_TIMEOUT,
  OPT_SEND,
  OPT_PROGRESS,
  OPT_LISTEN,
  OPT_EXIT_ON_PEER_CLOSE,
  OPT_EXIT_ON_STDIN_EOF,
  OPT_HALF_CLOSE,
  OPT_MESSAGE,
  OPT_ANY_SERVER,
  OPT_VERBOSE,
  OPT_STATS,
  OPT_HELP,
  OPT_VERSION
};

static const struct tl_option options[] = {
    {"wait", 0, TL_ARG_OPTIONAL, OPT_WAIT},
    {"timeout", 0, TL_ARG_REQUIRED, OPT_TIMEOUT},
    {"send", 0, TL_ARG_REQUIRED, OPT_SEND},
    {"progress", 0, TL_ARG_NONE, OPT_PROGRESS},
    {"listen", 0, TL_ARG_REQUIRED, OPT_LISTEN},
    {"exit-on-peer-close", 0, TL_ARG_NONE, OPT_EXIT_ON_PEER_CLOSE},
    {"exit-on-stdin-eof", 0, TL_ARG_NONE, OPT_EXIT_ON_STDIN_EOF},
    {"half-close", 0, TL_ARG_NONE, OPT_HALF_CLOSE},
    {"message", 0, TL_ARG_NONE, OPT_MESSAGE},
    {"any-server", 0, TL_ARG_NONE, OPT_ANY_SERVER},
    {"verbose", 'v', TL_ARG_NONE, OPT_VERBOSE},
    {"stats", 0, TL_ARG_NONE, OPT_STATS},
    {"help", 'h', TL_ARG_NONE, OPT_HELP},
    {"version", 'V', TL_ARG_NONE, OPT_VERSION},
    {NULL, 0, TL_ARG_NONE, 0}};

struct client {
  const char *address;
  np_options opts;
  int timeout_ms; /* -1: none */
  const char *send_file;
  int progress;
  const char *listen_address;
  unsigned relay_flags;
  int half_close;
  int stats;
};

static void usage(void) {
  printf(
      "Usage: %s ADDRESS [options]\n"
      "Connect to ADDRESS (pipe:NAME, \\\\.\\pipe\\NAME, tcp:HOST:PORT%s)"
      "\nand relay stdin and stdout.\n"
      "\n"
      "  --wait[=busy|absent|both]  wait for a busy or absent server\n"
      "  --timeout MS          give up waiting after MS milliseconds\n"
      "  --send FILE           send FILE, half-close, print the reply\n"
      "  --progress            show the --send progress meter anyway\n"
      "  --listen ADDRESS2     accept on ADDRESS2, forward each to ADDRESS\n"
      "  --exit-on-peer-close  exit when the server's output ends\n"
      "  --exit-on-stdin-eof   exit when stdin ends\n"
      "  --half-close          tell the server when stdin ends\n"
      "  --message             message mode\n"
      "  --any-server          accept a server run by another user\n"
      "  -v, --verbose         report the connection on stderr\n"
      "  --stats               report bytes and rates\n"
      "  -h, --help            show this help\n"
      "  -V, --version         show the version\n"
      "\n"
      "Exit status: 0 done, 1 runtime error, 2 usage error, 3 could not "
      "connect.\n",
      tl_prog, tl_sys_windows ? "" : ", unix:PATH");
}

static int parse_wait(struct client *cl, const char *what) {
  uint32_t flags;

  if (what == NULL || strcmp(what, "both") == 0)
    flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  else if (strcmp(what, "busy") == 0)
    flags = NP_OPT_WAIT_BUSY;
  else if (strcmp(what, "absent") == 0)
    flags = NP_OPT_WAIT_ABSENT;
  else
    return tl_usage_error("invalid value '%s' for --wait (busy, absent or "
                          "both)",
                          what);
  cl->opts.flags |= flags;
  return 0;
}

/* Handles one option; returns 0, or an exit status to stop with (-1 for
 * a clean exit after --help or --version). */
static int apply(struct client *cl, int id, const char *value) {
  long n;
  int err = 0;

  switch (id) {
  case OPT_WAIT:
    return parse_wait(cl, value);
  case OPT_TIMEOUT:
    if ((err = tl_parse_long("timeout", value, 0, 0x7fffffffL, &n)) == 0)
      cl->timeout_ms = (int)n;
    return err;
  case OPT_SEND:
    cl->send_file = value;
    return 0;
  case OPT_PROGRESS:
    cl->progress = 1;
    return 0;
  case OPT_LISTEN:
    cl->listen_address = value;
    return 0;
  case OPT_EXIT_ON_PEER_CLOSE:
    cl->relay_flags |= TL_RELAY_END_ON_DIR1;
    return 0;
  case OPT_EXIT_ON_STDIN_EOF:
    cl->relay_flags |= TL_RELAY_END_ON_DIR0;
    return 0;
  case OPT_HALF_CLOSE:
    cl->half_close = 1;
    return 0;
  case OPT_ANY_SERVER:
    cl->opts.flags |= NP_OPT_ANY_SERVER;
    return 0;
  case OPT_MESSAGE:
    cl->opts.flags |= NP_OPT_MESSAGE;
    return 0;
  case OPT_VERBOSE:
    tl_verbose = 1;
    return 0;
  case OPT_STATS:
    cl->stats = 1;
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

static int check(struct client *cl) {
  if (cl->address == NULL)
    return tl_usage_error("missing ADDRESS");
  if (cl->listen_address != NULL &&
      (cl->send_file != NULL || cl->relay_flags != 0 || cl->half_close))
    return tl_usage_error("--listen cannot be combined with --send, "
                          "--half-close or --exit-on-*");
  if (cl->progress && cl->send_file == NULL)
    return tl_usage_error("--progress needs --send");
  if (cl->timeout_ms >= 0 &&
      (cl->opts.flags & (NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT)) == 0)
    cl->opts.flags |= NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  cl->opts.timeout_ms = cl->timeout_ms;
  if (tl_address_is_tcp(cl->address))
    cl->opts.flags &= ~NP_OPT_MESSAGE;
  return 0;
}

static int parse(int argc, char **argv, struct client *cl) {
  struct tl_args a;
  const char *value;
  int id, err;

  tl_args_init(&a, argc, argv);
  while ((id = tl_args_next(&a, options, &value)) != TL_ARGS_END) {
    if (id == TL_ARGS_ERROR)
      return TL_EXIT_USAGE;
    if (id == TL_ARGS_POSITIONAL) {
      if (cl->address != NULL)
        return tl_usage_error("unexpected argument '%s'", value);
      cl->address = value;
    } else if ((err = apply(cl, id, value)) != 0) {
      return err;
    }
  }
  return check(cl);
}

/* --listen: a server whose every client is forwarded to the address. */
static int run_listen(const struct client *cl) {
  struct tl_server_config cfg;

  memset(&cfg, 0, sizeof(cfg));
  cfg.mode = TL_SERVE_FORWARD;
  cfg.listen_address = cl->listen_address;
  if (!tl_address_is_tcp(cl->listen_address))
    cfg.listen_opts.flags = cl->opts.flags & NP_OPT_MESSAGE;
  cfg.forward_address = cl->address;
  cfg.forward_opts = cl->opts;
  cfg.stats = cl->stats;
  return tl_serve(&cfg);
}

/* Waits until the connection is made: at once for a pipe whose server
 * was there, in the background for TCP and for a pipe that waits for
 * its server (--wait, --timeout).  Returns 0 or NP_E*. */
static int await_connected(np_poll *poll, struct tl_end *e, int timeout_ms) {
  uint64_t start = tl_sys_now_ms();

  for (;;) {
    uint64_t spent = tl_sys_now_ms() - start;
    np_event ev[4];
    int n, i, wait = -1;

    if (timeout_ms >= 0) {
      if (spent >= (uint64_t)timeout_ms)
        return NP_ETIMEDOUT;
      wait = timeout_ms - (int)spent;
    }
    n = np_poll_wait(poll, ev, 4, wait);
    if (n < 0)
      return n;
    for (i = 0; i < n; i++) {
      if (ev[i].events & (NP_WRITABLE | NP_ERR | NP_HUP)) {
        int err = np_stream_error(e->stream);

        /* The readiness just taken belongs to the relay as well. */
        tl_relay_event(e, ev[i].events & ~NP_ERR);
        return err;
      }
    }
  }
}

static int connect_stream(np_poll *poll, const struct client *cl,
                          struct tl_end *e) {
  np_peer peer;
  int err;

  err = np_connect(poll, cl->address, &cl->opts, tl_end_token(e),
                   TL_STREAM_INTEREST, &e->stream);
  /* The stream is writable once connected; np_stream_error tells. */
  if (err == 0) {
    err = await_connected(poll, e, cl->timeout_ms);
    if (err != 0) {
      np_close(e->stream);
      e->stream = NULL;
    }
  }
  if (err != 0)
    return tl_address_error(cl->address, err, TL_EXIT_CONNECT);
  if (tl_verbose && np_stream_peer(e->stream, &peer) == 0) {
    char user[256];

    if (np_stream_peer_user(e->stream, user, sizeof(user)) >= 0)
      tl_note("%s: connected, server pid %lld, user %s", cl->address,
              (long long)peer.pid, user);
    else
      tl_note("%s: connected, server pid %lld", cl->address,
              (long long)peer.pid);
  } else {
    tl_note("%s: connected", cl->address);
  }
  return 0;
}

/* The local side: standard input, or the file opened already, and
 * standard output.  Returns 0 or an exit status. */
static int open_local(np_poll *poll, const struct client *cl, struct tl_end *e,
                      tl_handle file) {
  int err;

  e->in_name = cl->send_file != NULL ? cl->send_file : "standard input";
  e->out_name = "standard output";
  err = tl_chan_new(poll, file != TL_NO_HANDLE ? file : tl_sys_stdin(),
                    tl_sys_stdout(), 1, 0, &e->chan);
  if (err != 0) {
    tl_error("%s: %s", e->in_name, np_strerror(err));
    return TL_EXIT_RUNTIME;
  }
  return 0;
}

static void setup_relay(struct tl_relay *r, const struct client *cl) {
  struct tl_end *s = &r->ends[STREAM_END], *l = &r->ends[LOCAL_END];

  s->owned = l->owned = 1;
  s->in_name = s->out_name = cl->address;
  r->ndirs = 2;
  r->flags = cl->relay_flags;
  r->dirs[0].from = l;
  r->dirs[0].to = s;
  r->dirs[0].propagate = cl->half_close || cl->send_file != NULL;
  r->dirs[1].from = s;
  r->dirs[1].to = l;
  r->dirs[1].propagate = 1;
}

/* Relays until done or a signal; draws the progress meter of --send. */
static void relay_loop(np_poll *poll, struct tl_relay *r, uint64_t size,
                       int progress) {
  uint64_t drawn = 0;

  while (!tl_relay_pump(r) && !tl_sys_signalled()) {
    np_event ev[16];
    int n = np_poll_wait(poll, ev, 16, progress ? PROGRESS_MS : -1), i;

    if (n < 0) {
      tl_error("poll: %s", np_strerror(n));
      r->error = n;
      break;
    }
    for (i = 0; i < n; i++)
      tl_relay_event(tl_token_end(ev[i].token), ev[i].events);
    if (progress && tl_sys_now_ms() - drawn >= PROGRESS_MS) {
      tl_report_progress(r->dirs[0].bytes, size, 0);
      drawn = tl_sys_now_ms();
    }
  }
  if (progress)
    tl_report_progress(r->dirs[0].bytes, size, 1);
}

static int run_relay(const struct client *cl) {
  struct tl_relay r;
  np_poll *poll;
  tl_handle file = TL_NO_HANDLE;
  uint64_t size = 0;
  int status, err;

  tl_relay_init(&r);
  setup_relay(&r, cl);
  /* A file that cannot be read is found before anything connects. */
  if (cl->send_file != NULL &&
      tl_sys_open_file(cl->send_file, &file, &size) != 0)
    return TL_EXIT_RUNTIME;
  if ((err = np_poll_new(&poll)) != 0) {
    tl_error("poll: %s", np_strerror(err));
    if (file != TL_NO_HANDLE)
      tl_sys_close(file);
    return TL_EXIT_RUNTIME;
  }
  status = connect_stream(poll, cl, &r.ends[STREAM_END]);
  if (status != 0 && file != TL_NO_HANDLE)
    tl_sys_close(file);
  if (status == 0)
    status = open_local(poll, cl, &r.ends[LOCAL_END], file);
  if (status == 0 && tl_relay_start(&r) != 0) {
    tl_error("%s", np_strerror(NP_ENOMEM));
    status = TL_EXIT_RUNTIME;
  }
  if (status == 0) {
    tl_sys_catch_signals(poll);
    relay_loop(poll, &r, size,
               cl->send_file != NULL &&
                   (cl->progress || tl_sys_stderr_is_tty()));
    if (r.error != 0 && !tl_sys_signalled()) {
      tl_error("%s: %s", r.error_name != NULL ? r.error_name : cl->address,
               np_strerror(r.error));
      status = TL_EXIT_RUNTIME;
    }
    if (cl->stats)
      tl_report_stats(cl->address, r.dirs[1].bytes, r.dirs[0].bytes,
                      tl_sys_now_ms() - r.started_ms);
    if (!tl_sys_signalled())
      tl_relay_linger(&r, poll);
    tl_note("%s: closed", cl->address);
  }
  tl_relay_close(&r);
  if (!tl_sys_signalled())
    (void)np_poll_flush(poll, TL_FLUSH_MS);
  tl_sys_catch_signals(NULL);
  np_poll_free(poll);
  return tl_sys_signalled() ? 128 + tl_sys_signalled() : status;
}

int main(int argc, char **argv) {
  struct client cl;
  int status;

  tl_prog = "pipe-client";
  tl_sys_init();
  memset(&cl, 0, sizeof(cl));
  cl.timeout_ms = -1;
  status = parse(argc, argv, &cl);
  if (status != 0)
    return status < 0 ? TL_EXIT_OK : status;
  status = cl.listen_address != NULL ? run_listen(&cl) : run_relay(&cl);
  tl_sys_quit();
  return status;
}
