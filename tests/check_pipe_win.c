/*
 * The Windows pipe adapter, white-box: the arguments of every pipe
 * creation and client open (recorded through the test seam,
 * common/seam.h: this program links tests/libnpipe-seam.la), the
 * ERROR_PIPE_CONNECTED and ERROR_NO_DATA paths, the security descriptor
 * as read back from the pipe, the SDDL check, buffer adaptation, the
 * wait loop, and teardown with operations still in flight.
 *
 * Where Wine does not implement a Windows behaviour (see the README's
 * Windows fidelity section), the test is kept and skips under Wine with
 * its reason.
 */
#include "config.h"

#include <winsock2.h>
#include <windows.h>
/* aclapi.h and sddl.h need windows.h first. */
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/seam.h"
#include "helpers.h"
#include "win/pipe.h"

#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define WAIT_MS 10000
#define MAX_CALLS 64

/* ---- the recording seam ------------------------------------------------ */

struct pipe_call {
  wchar_t name[300];
  DWORD open, mode, max;
  int has_sa, has_sd;
  BOOL inherit;
  HANDLE handle; /* what the real call returned */
};

struct file_call {
  wchar_t name[300];
  DWORD access, flags;
  int has_sa;
  BOOL inherit;
  DWORD thread; /* the thread that opened */
};

enum early { EARLY_NONE, EARLY_CLIENT, EARLY_CLIENT_GONE };

static struct pipe_call pcalls[MAX_CALLS];
static struct file_call fcalls[MAX_CALLS];
static DWORD connect_errs[MAX_CALLS]; /* 0 or GetLastError() */
static int npcalls, nfcalls, nconnects;
static enum early early_mode;
static HANDLE early_client = INVALID_HANDLE_VALUE;
static DWORD fail_create_with;   /* fail CreateNamedPipeW with this */
static int fail_create_on = -1;  /* ... on this call */
static const wchar_t *fake_host; /* CreateFileW on it fails */
static int fn_create_pipe, fn_create_file, fn_connect_pipe; /* seam ids */
static int fn_dequeue; /* GetQueuedCompletionStatusEx */
static int ndequeues;
static int fn_sleep, fn_wait_pipe; /* Sleep, WaitNamedPipeW */
static int fn_security_info; /* GetSecurityInfo */
/* When set, the owner that GetSecurityInfo reads is turned into another
 * user's: the last part of the SID changes, as a squatter's would. */
static int foreign_owner;
static int owner_reads; /* GetSecurityInfo calls that read an owner */
static int nsleeps;                /* calls of either on this thread */
static DWORD main_thread;
/* When set, an open on another thread (a worker's) waits for it. */
static HANDLE gate;
static volatile LONG gated; /* opens that reached the gate */

static void copy_name(wchar_t *dst, LPCWSTR src) {
  wcsncpy(dst, src, 299);
  dst[299] = L'\0';
}

/* A client that opens the instance before ConnectNamedPipe is issued,
 * and optionally writes and leaves at once. */
static void open_early_client(LPCWSTR name) {
  DWORD n;

  early_client = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                             OPEN_EXISTING, 0, NULL);
  if (early_mode == EARLY_CLIENT_GONE &&
      early_client != INVALID_HANDLE_VALUE) {
    WriteFile(early_client, "bye", 3, &n, NULL);
    CloseHandle(early_client);
    early_client = INVALID_HANDLE_VALUE;
  }
}

/* CreateNamedPipeW(name, open, mode, max, out, in, timeout, sa). */
static long on_create_pipe(struct np__seam_call *c, int after) {
  const SECURITY_ATTRIBUTES *sa = (const void *)c->arg[7];
  struct pipe_call *p;

  if (!after)
    return npcalls == fail_create_on ? (long)fail_create_with : 0;
  if (npcalls >= MAX_CALLS)
    return 0;
  p = &pcalls[npcalls++];
  copy_name(p->name, (LPCWSTR)c->arg[0]);
  p->open = (DWORD)c->arg[1];
  p->mode = (DWORD)c->arg[2];
  p->max = (DWORD)c->arg[3];
  p->has_sa = sa != NULL;
  p->has_sd = sa != NULL && sa->lpSecurityDescriptor != NULL;
  p->inherit = sa != NULL ? sa->bInheritHandle : TRUE;
  p->handle = (HANDLE)c->result;
  if (p->handle != INVALID_HANDLE_VALUE && npcalls == 1 &&
      early_mode != EARLY_NONE)
    open_early_client((LPCWSTR)c->arg[0]);
  return 0;
}

/* CreateFileW(name, access, share, sa, disposition, flags, template). */
static long on_create_file(struct np__seam_call *c, int after) {
  const SECURITY_ATTRIBUTES *sa = (const void *)c->arg[3];
  LPCWSTR name = (LPCWSTR)c->arg[0];
  struct file_call *f;

  if (!after) {
    if (gate != NULL && GetCurrentThreadId() != main_thread) {
      InterlockedIncrement(&gated);
      WaitForSingleObject(gate, WAIT_MS);
    }
    return fake_host != NULL &&
                   wcsncmp(name, fake_host, wcslen(fake_host)) == 0
               ? ERROR_BAD_NETPATH
               : 0;
  }
  if (nfcalls >= MAX_CALLS)
    return 0;
  f = &fcalls[nfcalls++];
  f->thread = GetCurrentThreadId();
  copy_name(f->name, name);
  f->access = (DWORD)c->arg[1];
  f->flags = (DWORD)c->arg[5];
  f->has_sa = sa != NULL;
  f->inherit = sa != NULL ? sa->bInheritHandle : TRUE;
  return 0;
}

/* Records and steers the adapter's pipe calls through the test seam
 * (common/seam.h); the seam restores the last error after us. */
static long recorder(struct np__seam_call *c, int after, void *ctx) {
  NP__UNUSED(ctx);
  if (c->fn == fn_create_pipe)
    return on_create_pipe(c, after);
  if (c->fn == fn_create_file)
    return on_create_file(c, after);
  if (c->fn == fn_connect_pipe && after && nconnects < MAX_CALLS)
    connect_errs[nconnects++] = c->result ? 0 : (DWORD)c->err;
  if (c->fn == fn_dequeue && !after)
    ndequeues++;
  if (c->fn == fn_security_info && after && c->result == ERROR_SUCCESS &&
      (c->arg[2] & OWNER_SECURITY_INFORMATION)) {
    PSID owner = *(PSID *)c->arg[3];

    owner_reads++;
    if (foreign_owner && owner != NULL)
      (*GetSidSubAuthority(owner, *GetSidSubAuthorityCount(owner) - 1)) += 7;
  }
  if ((c->fn == fn_sleep || c->fn == fn_wait_pipe) && !after &&
      GetCurrentThreadId() == main_thread)
    nsleeps++;
  return 0;
}

static void reset_records(void) {
  npcalls = nfcalls = nconnects = ndequeues = nsleeps = 0;
  early_mode = EARLY_NONE;
  fail_create_on = -1;
  fake_host = NULL;
  foreign_owner = 0;
  owner_reads = 0;
}

/* ---- fixture and small helpers ---------------------------------------- */

static np_poll *poll_;
static char name_[300];
static wchar_t wname_[300];

static void setup(void) {
  fn_create_pipe = np__seam_fn_id("CreateNamedPipeW");
  fn_create_file = np__seam_fn_id("CreateFileW");
  fn_connect_pipe = np__seam_fn_id("ConnectNamedPipe");
  fn_dequeue = np__seam_fn_id("GetQueuedCompletionStatusEx");
  fn_sleep = np__seam_fn_id("Sleep");
  fn_wait_pipe = np__seam_fn_id("WaitNamedPipeW");
  fn_security_info = np__seam_fn_id("GetSecurityInfo");
  ck_assert_int_ge(fn_security_info, 0);
  main_thread = GetCurrentThreadId();
  ck_assert_int_ge(fn_dequeue, 0);
  ck_assert_int_ge(fn_sleep, 0);
  ck_assert_int_ge(fn_wait_pipe, 0);
  ck_assert_int_ge(fn_create_pipe, 0);
  ck_assert_int_ge(fn_create_file, 0);
  ck_assert_int_ge(fn_connect_pipe, 0);
  np__seam_reset();
  np__seam_observe(recorder, NULL);
  reset_records();
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  npt_pipe_name(name_, sizeof(name_), "win");
  wcscpy(wname_, L"\\\\.\\pipe\\");
  MultiByteToWideChar(CP_UTF8, 0, name_ + 5, -1, wname_ + 9, 280);
}

static void teardown(void) {
  if (gate != NULL) {
    SetEvent(gate); /* a failed test must not leave a worker waiting */
    CloseHandle(gate);
    gate = NULL;
  }
  np__seam_reset();
  if (early_client != INVALID_HANDLE_VALUE)
    CloseHandle(early_client);
  early_client = INVALID_HANDLE_VALUE;
  np_poll_free(poll_);
  poll_ = NULL;
}

/* Frees the poller and checks that no pipe object outlived it. */
static void free_poll_no_leak(void) {
  np_poll_free(poll_);
  poll_ = NULL;
  ck_assert_int_eq(np__pipe_live, 0);
}

static struct np__pipe *pipe_of(np_stream *s) {
  return NP__CONTAINER_OF(s, struct np__pipe, stream);
}

static np_stream *accept_one(np_listener *l, uint64_t tok, uint32_t interest) {
  np_stream *s = NULL;
  int err;

  while ((err = np_accept(l, tok, interest, &s)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS) != 0,
                  "no connection within %d ms", WAIT_MS);
  ck_assert_int_eq(err, 0);
  return s;
}

static ptrdiff_t read_next(np_stream *s, uint64_t tok, void *buf, size_t n) {
  ptrdiff_t r;

  while ((r = np_read(s, buf, n)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, tok, NP_READABLE, WAIT_MS) != 0,
                  "nothing to read within %d ms", WAIT_MS);
  return r;
}

/* Waits for an event of tok with every bit of bits; returns its bits. */
static uint32_t await_tok(uint64_t tok, uint32_t bits) {
  uint32_t ev = npt_wait_token(poll_, tok, bits, WAIT_MS);

  ck_assert_msg(ev != 0, "no event %#x for token %u within %d ms",
                (unsigned)bits, (unsigned)tok, WAIT_MS);
  return ev;
}

/* Waits until the allocations are back to base: a worker frees its job
 * on its own thread, a little after the open it was waiting for. */
static void await_allocs(long base) {
  uint64_t deadline = npt_now_ms() + WAIT_MS;

  while (np__seam_allocs() != base && npt_now_ms() < deadline)
    npt_sleep_ms(1);
  ck_assert_int_eq(np__seam_allocs(), base);
}

/* np_connect as np__pipe_connect sees it, with the internal flag that
 * opens on a worker thread as for a remote name. */
static int connect_on_worker(const np_options *o, uint64_t tok,
                             uint32_t interest, np_stream **out) {
  struct np__address addr;
  struct np__opts opts;

  ck_assert_int_eq(np__address_parse(name_, &addr), 0);
  ck_assert_int_eq(np__options_resolve(o, &opts), 0);
  opts.flags |= NP__OPT_WORKER;
  return np__pipe_connect(poll_, &addr, &opts, tok, interest, out);
}

/* Reads n bytes from a plain (blocking) handle once they are there,
 * letting the poller run meanwhile. */
static void raw_read(HANDLE h, char *buf, DWORD n) {
  uint64_t deadline = npt_now_ms() + WAIT_MS;
  DWORD avail = 0, got = 0;
  np_event ev[8];

  while (PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL) && avail < n) {
    ck_assert_msg(npt_now_ms() < deadline, "raw read stalled");
    np_poll_wait(poll_, ev, 8, 10);
  }
  ck_assert_uint_ge(avail, n);
  ck_assert(ReadFile(h, buf, n, &got, NULL));
  ck_assert_uint_eq(got, n);
}

static unsigned char pattern(unsigned seed, size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;

  return (unsigned char)(x >> 13 ^ x >> 24);
}

static void fill(unsigned char *buf, size_t n, unsigned seed) {
  size_t i;

  for (i = 0; i < n; i++)
    buf[i] = pattern(seed, i);
}

/* The current user's SID, malloc'd. */
static PSID user_sid(void) {
  union {
    TOKEN_USER user;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } info;
  HANDLE token;
  DWORD len;
  PSID copy;

  ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token));
  ck_assert(GetTokenInformation(token, TokenUser, &info, sizeof(info), &len));
  CloseHandle(token);
  len = GetLengthSid(info.user.User.Sid);
  copy = malloc(len);
  ck_assert_ptr_nonnull(copy);
  ck_assert(CopySid(len, copy, info.user.User.Sid));
  return copy;
}

/* "D:P(A;;GA;;;SY)(A;;GA;;;<user>)" as UTF-8 into buf. */
static void custom_sddl(char *buf, size_t len) {
  PSID sid = user_sid();
  char *text;

  ck_assert(ConvertSidToStringSidA(sid, &text));
  snprintf(buf, len, "D:P(A;;GA;;;SY)(A;;GA;;;%s)", text);
  LocalFree(text);
  free(sid);
}

/* ---- creation arguments ------------------------------------------------ */

#define SQOS_BITS (SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION)

/* Checks CreateNamedPipeW call i of a listener with flags. */
static void check_create(int i, uint32_t flags, int first) {
  const struct pipe_call *c = &pcalls[i];
  DWORD type = flags & NP_OPT_MESSAGE
                   ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                   : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE;

  ck_assert_msg(wcscmp(c->name, wname_) == 0, "call %d: name", i);
  ck_assert_msg((c->open & FILE_FLAG_FIRST_PIPE_INSTANCE) ==
                    (first ? (DWORD)FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                "call %d (flags %#x): first-instance flag", i,
                (unsigned)flags);
  ck_assert_uint_eq(c->open & ~(DWORD)FILE_FLAG_FIRST_PIPE_INSTANCE,
                    PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED);
  ck_assert_msg((c->mode & PIPE_REJECT_REMOTE_CLIENTS) ==
                    (flags & NP_OPT_ALLOW_REMOTE
                         ? 0
                         : (DWORD)PIPE_REJECT_REMOTE_CLIENTS),
                "call %d (flags %#x): reject-remote flag", i, (unsigned)flags);
  ck_assert_uint_eq(c->mode & ~(DWORD)PIPE_REJECT_REMOTE_CLIENTS,
                    type | PIPE_WAIT);
  ck_assert_uint_eq(c->max, PIPE_UNLIMITED_INSTANCES);
  ck_assert_msg(c->has_sd, "call %d (flags %#x): no security descriptor", i,
                (unsigned)flags);
  ck_assert(!c->inherit);
}

static void check_open(int i) {
  const struct file_call *c = &fcalls[i];

  ck_assert_msg((c->flags & SECURITY_VALID_SQOS_FLAGS) == SQOS_BITS,
                "open %d: SQOS flags %#lx", i, (unsigned long)c->flags);
  ck_assert(c->flags & FILE_FLAG_OVERLAPPED);
  ck_assert_uint_eq(c->access, GENERIC_READ | GENERIC_WRITE);
  ck_assert(c->has_sa && !c->inherit);
}

/* One listener with the given options: every creation and open checked,
 * including the replacement that np_accept creates. */
static void check_one_combination(uint32_t flags, int backlog,
                                  const char *sddl) {
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  int i, creates;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  o.backlog = backlog;
  o.sddl = sddl;
  o.timeout_ms = 5000;
  reset_records();
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(npcalls, backlog);
  /* The client's message flag must match the server's pipe type. */
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  creates = npcalls;
  ck_assert_int_eq(creates, backlog + 1);
  for (i = 0; i < creates; i++)
    check_create(i, flags, i == 0);
  ck_assert_int_ge(nfcalls, 1);
  for (i = 0; i < nfcalls; i++)
    check_open(i);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}

/* Every combination of option flags, backlogs and descriptors: the
 * secure arguments are never lost (the tokio CVE-2023-22466 class). */
START_TEST(test_pipe_win_create_args_every_option) {
  static const uint32_t all = NP_OPT_MESSAGE | NP_OPT_ALLOW_REMOTE |
                              NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT |
                              NP_OPT_ANY_USER | NP_OPT_ALLOW_UID;
  static const int backlogs[] = {1, 2, 4};
  char sddl[300];
  const char *sddls[2];
  uint32_t flags;
  size_t b, d;

  custom_sddl(sddl, sizeof(sddl));
  sddls[0] = NULL;
  sddls[1] = sddl;
  for (flags = 0; flags <= all; flags++) {
    if ((flags & ~all) != 0)
      continue;
    for (b = 0; b < NP__ARRAY_SIZE(backlogs); b++)
      for (d = 0; d < 2; d++)
        check_one_combination(flags, backlogs[b], sddls[d]);
  }
  free_poll_no_leak();
}
END_TEST

/* A remote host goes into the path; the open keeps its SQOS flags, runs
 * on a worker thread, and its error arrives as NP_ERR. */
START_TEST(test_pipe_win_remote_host_path) {
  np_stream *c = (np_stream *)&c;

  fake_host = L"\\\\fakehost\\";
  ck_assert_int_eq(np_connect(poll_, "\\\\fakehost\\pipe\\some-name", NULL, 1,
                              NP_WRITABLE, &c),
                   0);
  ck_assert_int_eq(np_write(c, "x", 1), NP_EAGAIN);
  ck_assert_uint_eq(await_tok(1, NP_ERR) & NP_WRITABLE, NP_WRITABLE);
  ck_assert_int_eq(np_stream_error(c), NP_ENOENT);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ENOENT);
  ck_assert_int_eq(nfcalls, 1);
  ck_assert(wcscmp(fcalls[0].name, L"\\\\fakehost\\pipe\\some-name") == 0);
  ck_assert_uint_ne(fcalls[0].thread, main_thread);
  check_open(0);
  np_close(c);
  free_poll_no_leak();
}
END_TEST

/* ---- the connect paths that queue no completion ----------------------- */

static void pipe_connected_path(uint32_t flags) {
  np_options o;
  np_listener *l;
  np_stream *s;
  char buf[16];
  DWORD n;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  o.backlog = 1;
  early_mode = EARLY_CLIENT;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert(early_client != INVALID_HANDLE_VALUE);
  ck_assert_int_ge(nconnects, 1);
  ck_assert_uint_eq(connect_errs[0], ERROR_PIPE_CONNECTED);
  /* No packet comes for it, yet the listener is readable. */
  ck_assert_uint_eq(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS),
                    NP_READABLE);
  s = accept_one(l, TOK_S, NP_READABLE | NP_WRITABLE);
  ck_assert_int_eq(np_write(s, "ping", 4), 4);
  raw_read(early_client, buf, 4);
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  ck_assert(WriteFile(early_client, "pong", 4, &n, NULL));
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
  /* The replacement instance was created by the accept and listens. */
  ck_assert_int_eq(npcalls, 2);
  np_close(s);
  np_listener_close(l);
  CloseHandle(early_client);
  early_client = INVALID_HANDLE_VALUE;
}

START_TEST(test_pipe_win_pipe_connected_byte_mode) {
  pipe_connected_path(0);
  free_poll_no_leak();
}
END_TEST

START_TEST(test_pipe_win_pipe_connected_message_mode) {
  pipe_connected_path(NP_OPT_MESSAGE);
  free_poll_no_leak();
}
END_TEST

static void no_data_path(uint32_t flags) {
  np_options o;
  np_listener *l;
  np_stream *s, *c;
  char buf[16];

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  o.backlog = 1;
  early_mode = EARLY_CLIENT_GONE;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_ge(nconnects, 1);
  ck_assert_uint_eq(connect_errs[0], ERROR_NO_DATA);
  s = accept_one(l, TOK_S, NP_READABLE);
  /* What the client wrote, then the end; nothing loops or wedges. */
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 3);
  ck_assert_int_eq(memcmp(buf, "bye", 3), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EOF);
  ck_assert_int_eq(np_write(s, "x", 1), NP_EPIPE);
  np_close(s);
  /* The listener goes on with a normal client. */
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_write(c, "hi", 2), 2);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 2);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}

START_TEST(test_pipe_win_no_data_byte_mode) {
  no_data_path(0);
  free_poll_no_leak();
}
END_TEST

START_TEST(test_pipe_win_no_data_message_mode) {
  no_data_path(NP_OPT_MESSAGE);
  free_poll_no_leak();
}
END_TEST

/* ---- security ---------------------------------------------------------- */

static int mask_is_all(ACCESS_MASK m) {
  /* Windows maps GENERIC_ALL to the pipe's specific rights when it
   * stores the descriptor; Wine keeps it as given. */
  return m == GENERIC_ALL || m == FILE_ALL_ACCESS;
}

static const ACCESS_ALLOWED_ACE *ace_at(PACL dacl, DWORD i) {
  void *ace = NULL;

  ck_assert(GetAce(dacl, i, &ace));
  return ace;
}

/* Reads the owner and DACL back from a pipe instance and checks them
 * against the default design. */
static void check_default_sd(HANDLE h) {
  PSID owner = NULL, me = user_sid();
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_DESCRIPTOR_CONTROL control;
  DWORD revision;
  const ACCESS_ALLOWED_ACE *ace;

  ck_assert_uint_eq(
      GetSecurityInfo(h, SE_KERNEL_OBJECT,
                      OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                      &owner, NULL, &dacl, NULL, &sd),
      ERROR_SUCCESS);
  ck_assert(EqualSid(owner, me));
  ck_assert(GetSecurityDescriptorControl(sd, &control, &revision));
  ck_assert(control & SE_DACL_PROTECTED);
  ck_assert_ptr_nonnull(dacl);
  /* SYSTEM and the token's user, nothing else, and no deny entry: an
   * OpenSSH session is a network logon of the same user. */
  ck_assert_uint_eq(dacl->AceCount, 2);
  ace = ace_at(dacl, 0);
  ck_assert_uint_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
  ck_assert(IsWellKnownSid((PSID)&ace->SidStart, WinLocalSystemSid));
  ck_assert(mask_is_all(ace->Mask));
  ace = ace_at(dacl, 1);
  ck_assert_uint_eq(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
  ck_assert(EqualSid((PSID)&ace->SidStart, me));
  ck_assert(mask_is_all(ace->Mask));
  LocalFree(sd);
  free(me);
}

/* The default descriptor, read back from every instance (Wine applies
 * explicit descriptors faithfully). */
START_TEST(test_pipe_win_default_descriptor_reads_back) {
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  int i;

  memset(&o, 0, sizeof(o));
  o.backlog = 2;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(npcalls, 3);
  for (i = 0; i < npcalls; i++)
    check_default_sd(pcalls[i].handle);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* The access list of instance h, read back; free the result with
 * LocalFree. */
static PSECURITY_DESCRIPTOR read_dacl(HANDLE h, PACL *dacl) {
  PSECURITY_DESCRIPTOR sd = NULL;

  ck_assert_uint_eq(GetSecurityInfo(h, SE_KERNEL_OBJECT,
                                    DACL_SECURITY_INFORMATION, NULL, NULL,
                                    dacl, NULL, &sd),
                    ERROR_SUCCESS);
  return sd;
}

/* A caller's descriptor replaces the default one. */
START_TEST(test_pipe_win_custom_descriptor_applied) {
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID me = user_sid();
  char sddl[300];

  custom_sddl(sddl, sizeof(sddl));
  memset(&o, 0, sizeof(o));
  o.sddl = sddl;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  sd = read_dacl(pcalls[0].handle, &dacl);
  ck_assert_uint_eq(dacl->AceCount, 2);
  ck_assert(
      IsWellKnownSid((PSID)&ace_at(dacl, 0)->SidStart, WinLocalSystemSid));
  ck_assert(EqualSid((PSID)&ace_at(dacl, 1)->SidStart, me));
  LocalFree(sd);
  free(me);
  /* The user it names can connect. */
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A custom descriptor that grants write access to other users: they
 * keep it, minus the right to create instances of the name (with which
 * they could take the real server's clients); SYSTEM, OWNER RIGHTS and
 * the server's user keep everything.  Read back from the instance. */
START_TEST(test_pipe_win_custom_descriptor_strips_create_instance) {
  const ACCESS_MASK rw = (FILE_GENERIC_READ | FILE_GENERIC_WRITE) &
                         ~(ACCESS_MASK)FILE_CREATE_PIPE_INSTANCE;
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID me = user_sid();
  char sddl[400], *text;
  int i;

  ck_assert(ConvertSidToStringSidA(me, &text));
  snprintf(sddl, sizeof(sddl),
           "D:P(A;;GA;;;SY)(A;;GA;;;%s)(A;;GA;;;OW)(A;;GRGW;;;IU)"
           "(A;;FA;;;BU)(A;;0x12019f;;;AU)(D;;GA;;;BG)",
           text);
  LocalFree(text);
  memset(&o, 0, sizeof(o));
  o.sddl = sddl;
  o.backlog = 2;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  for (i = 0; i < npcalls; i++) {
    sd = read_dacl(pcalls[i].handle, &dacl);
    ck_assert_uint_eq(dacl->AceCount, 7);
    ck_assert(mask_is_all(ace_at(dacl, 0)->Mask));
    ck_assert(mask_is_all(ace_at(dacl, 1)->Mask));
    ck_assert(mask_is_all(ace_at(dacl, 2)->Mask));
    ck_assert_uint_eq(ace_at(dacl, 3)->Mask, rw);
    ck_assert_uint_eq(ace_at(dacl, 4)->Mask,
                      FILE_ALL_ACCESS & ~(ACCESS_MASK)FILE_CREATE_PIPE_INSTANCE);
    ck_assert_uint_eq(ace_at(dacl, 5)->Mask, 0x12019bu);
    /* A deny entry is left as it is. */
    ck_assert_uint_eq(ace_at(dacl, 6)->Header.AceType, ACCESS_DENIED_ACE_TYPE);
    ck_assert(mask_is_all(ace_at(dacl, 6)->Mask));
    LocalFree(sd);
  }
  free(me);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* With an owner named, that owner keeps the right and the token's
 * default owner does not stand in for it. */
START_TEST(test_pipe_win_named_owner_keeps_create_instance) {
  PSECURITY_DESCRIPTOR sd = NULL;
  BOOL present, defaulted;
  PACL dacl;

  ck_assert_int_eq(
      np__security_new("O:BAD:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GW;;;BU)", &sd),
      0);
  ck_assert(GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted));
  ck_assert_uint_eq(ace_at(dacl, 1)->Mask, GENERIC_ALL);
  ck_assert_uint_eq(ace_at(dacl, 2)->Mask,
                    FILE_GENERIC_WRITE &
                        ~(ACCESS_MASK)FILE_CREATE_PIPE_INSTANCE);
  np__security_free(sd);
}
END_TEST

/* A client refuses a server that another user runs (pipe squatting):
 * NP_EACCES and nothing left open, at once or after a wait; the owner
 * is read from the instance, and under Wine, where every process is one
 * user, the seam turns it into another user's.  NP_OPT_ANY_SERVER lets
 * it through. */
START_TEST(test_pipe_win_client_refuses_foreign_server) {
  np_listener *l;
  np_stream *c = (np_stream *)&c, *s;
  np_options o;
  uint64_t t;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  /* The real owner passes. */
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  ck_assert_int_eq(owner_reads, 1);
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  foreign_owner = 1;
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), NP_EACCES);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(owner_reads, 2);
  /* The refused open left no handle: the instance serves the next. */
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_ANY_SERVER;
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  ck_assert_int_eq(owner_reads, 2); /* not even asked */
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  /* A client that waits for the name is refused when it opens it. */
  np_listener_close(l);
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 5000;
  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_WRITABLE | NP_ONESHOT, &c), 0);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  t = npt_now_ms();
  ck_assert_uint_eq(npt_wait_token(poll_, TOK_C, NP_ERR, WAIT_MS),
                    NP_WRITABLE | NP_ERR);
  ck_assert_uint_lt(npt_now_ms() - t, WAIT_MS);
  ck_assert_int_eq(np_stream_error(c), NP_EACCES);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A server made with plain CreateNamedPipeW and no descriptor, as most
 * Win32 programs make theirs: Windows gives the instance the creator's
 * default owner; Wine gives it no owner at all, and the client then
 * asks for the server process's user.  Either way this user's server
 * is accepted. */
START_TEST(test_pipe_win_client_accepts_plain_win32_server) {
  HANDLE server;
  np_stream *c;
  wchar_t wide[300];
  char name[300], got[200], *text;

  npt_pipe_name(name, sizeof(name), "plain");
  wcscpy(wide, L"\\\\.\\pipe\\");
  MultiByteToWideChar(CP_UTF8, 0, name + 5, -1, wide + 9, 280);
  server = CreateNamedPipeW(wide, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                            PIPE_TYPE_BYTE, 1, 4096, 4096, 0, NULL);
  ck_assert_ptr_ne(server, INVALID_HANDLE_VALUE);
  ck_assert_int_eq(np_connect(poll_, name, NULL, TOK_C, 0, &c), 0);
  ck_assert_int_eq(owner_reads, 1);
  /* The client names that server the same way.  Under Wine that is the
   * server process's user, this one; on Windows the owner, which for an
   * elevated process is Administrators. */
  ck_assert_int_gt(np_stream_peer_sid(c, got, sizeof(got)), 0);
  if (npt_under_wine()) {
    PSID me = user_sid();

    ck_assert(ConvertSidToStringSidA(me, &text));
    ck_assert_str_eq(got, text);
    LocalFree(text);
    free(me);
  }
  np_close(c);
  CloseHandle(server);
  free_poll_no_leak();
}
END_TEST

/* A mandatory label in the descriptor admits low-integrity clients on
 * purpose: the label is read back from the instance.  Wine stores no
 * label (it has no integrity levels), so there the test only shows that
 * the descriptor is accepted and applied. */
START_TEST(test_pipe_win_low_integrity_label_applied) {
  np_listener *l;
  np_options o;
  PACL sacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  char sddl[400], *text;
  PSID me = user_sid();
  DWORD e;

  ck_assert(ConvertSidToStringSidA(me, &text));
  snprintf(sddl, sizeof(sddl),
           "D:P(A;;GA;;;SY)(A;;GA;;;%s)S:(ML;;NW;;;LW)", text);
  LocalFree(text);
  free(me);
  memset(&o, 0, sizeof(o));
  o.sddl = sddl;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  e = GetSecurityInfo(pcalls[0].handle, SE_KERNEL_OBJECT,
                      LABEL_SECURITY_INFORMATION, NULL, NULL, NULL, &sacl,
                      &sd);
  if (npt_under_wine() && (e != ERROR_SUCCESS || sacl == NULL ||
                           sacl->AceCount == 0)) {
    printf("test_pipe_win_low_integrity_label_applied: Wine keeps no "
           "mandatory label (GetSecurityInfo: %lu)\n", (unsigned long)e);
  } else {
    const SYSTEM_MANDATORY_LABEL_ACE *ace = NULL;

    ck_assert_uint_eq(e, ERROR_SUCCESS);
    ck_assert_ptr_nonnull(sacl);
    ck_assert_uint_eq(sacl->AceCount, 1);
    ck_assert(GetAce(sacl, 0, (void **)&ace));
    ck_assert_uint_eq(ace->Header.AceType, SYSTEM_MANDATORY_LABEL_ACE_TYPE);
    ck_assert(IsWellKnownSid((PSID)&ace->SidStart, WinLowLabelSid));
    ck_assert_uint_eq(ace->Mask, SYSTEM_MANDATORY_LABEL_NO_WRITE_UP);
  }
  if (sd != NULL)
    LocalFree(sd);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* NP_OPT_IMPERSONATE raises the client's SQOS level to impersonation;
 * without it the open says identification (every combination of the
 * other flags is checked in test_pipe_win_create_args_every_option). */
START_TEST(test_pipe_win_impersonate_flag_sets_sqos) {
  np_listener *l;
  np_stream *c, *s;
  np_options o;

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_IMPERSONATE;
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  ck_assert_int_eq(nfcalls, 1);
  ck_assert_uint_eq(fcalls[0].flags & SECURITY_VALID_SQOS_FLAGS,
                    SECURITY_SQOS_PRESENT | SECURITY_IMPERSONATION);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_stream_impersonate(s), 0);
  ck_assert_int_eq(np_revert(), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

static const char *const sddl_good[] = {
    "D:P(A;;GA;;;SY)",
    "D:(A;;GA;;;SY)(A;;GA;;;BA)",
    "O:BAG:BAD:P(A;;GA;;;SY)(A;;0x12019b;;;AU)",
    "D:PAI(A;;GA;;;SY)",
    "D:AR(A;;GA;;;SY)",
    "D:P(D;;GA;;;NU)(A;;GA;;;SY)",
    "D:P(D;;GA;;;WD)(A;;GA;;;BA)",
    "D:P(A;;GA;;;SY)(D;;GA;;;AN)",
    "D:P",
    "D:",
    "D:P(A;;FA;;;S-1-5-18)",
    "D:P(A;;GA;;;S-1-5-21-1-2-3-1001)",
    "D:P(A;;GA;;;SY)S:(ML;;NW;;;HI)",
    "S:(ML;;NW;;;HI)D:P(A;;GA;;;SY)",
    "G:SYD:P(A;;GA;;;SY)",
    "D:P(a;;GA;;;sy)",
};

static const char *const sddl_bad[] = {
    "",
    "O:BA",
    "O:BAG:BA",
    "S:(ML;;NW;;;LW)",
    "D:NO_ACCESS_CONTROL",
    "D:NO_ACCESS_CONTROL(A;;GA;;;SY)",
    "D:PNO_ACCESS_CONTROL",
    "D:P(A;;GA;;;WD)",
    "D:P(A;;GR;;;WD)",
    "D:P(A;;0x1;;;WD)",
    "D:P(A;;GA;;;AN)",
    "D:P(A;;GA;;;NU)",
    "D:P(A;;GA;;;SY)(A;;FR;;;WD)",
    "D:(A;;GA;;;S-1-1-0)",
    "D:(A;;GA;;;S-1-5-7)",
    "D:(A;;GA;;;S-1-5-2)",
    "D:(A;;GA;;;wd)",
    "D:(A;;GA;;;s-1-1-0)",
    "D:(D;;GA;;;NU)(A;;GA;;;NU)",
    "D:(A;;GA;;;SY)(A;;GA;;;AN)",
    "D:(OA;;GA;;;SY)",
    "D:P(AU;SA;GA;;;WD)",
    "D:(XA;;GA;;;SY;(x))",
    "D:(A;;GA;;;SY",
    "D:A;;GA;;;SY)",
    "D:(A;;GA;;;SY))",
    "D:(A;;GA;;SY)",
    "D:(A;;GA;;;SY;x)",
    "D:(A;;GA;;;)",
    "D:P(A;;GA;;;SY)D:(A;;GA;;;SY)",
    "D:X(A;;GA;;;SY)",
    "X:(A;;GA;;;SY)",
    "D:(A;;GA;;;SY) ",
    " D:(A;;GA;;;SY)",
    "D:((A;;GA;;;SY))",
    "O:BAD:P(A;;GA;;;SY)(A;;GA;;;WD)S:(ML;;NW;;;HI)",
};

/* The SDDL check on its own, and np_listen refusing before any system
 * call. */
START_TEST(test_pipe_win_sddl_check_table) {
  np_options o;
  np_listener *l = (np_listener *)&l;
  size_t i;

  for (i = 0; i < NP__ARRAY_SIZE(sddl_good); i++)
    ck_assert_msg(np__sddl_check(sddl_good[i]) == 0, "refused \"%s\"",
                  sddl_good[i]);
  for (i = 0; i < NP__ARRAY_SIZE(sddl_bad); i++)
    ck_assert_msg(np__sddl_check(sddl_bad[i]) == NP_EINVAL, "accepted \"%s\"",
                  sddl_bad[i]);
  ck_assert_int_eq(np__sddl_check(NULL), NP_EINVAL);
  memset(&o, 0, sizeof(o));
  for (i = 0; i < NP__ARRAY_SIZE(sddl_bad); i++) {
    o.sddl = sddl_bad[i];
    ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), NP_EINVAL);
    ck_assert_ptr_null(l);
  }
  ck_assert_int_eq(npcalls, 0);
  /* Well-formed for the check, unknown to Windows: refused too. */
  o.sddl = "D:P(A;;GA;;;QQ)";
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), NP_EINVAL);
  ck_assert_int_eq(npcalls, 0);
  free_poll_no_leak();
}
END_TEST

/* ---- first instance ---------------------------------------------------- */

/* Windows refuses a second first instance on a live name.  Wine creates
 * it (FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced), so this only runs
 * on Windows; test_pipe_win_create_args_every_option checks the flag is
 * passed and test_pipe_win_name_taken_maps_to_eaddrinuse the mapping. */
START_TEST(test_pipe_win_second_listener_is_eaddrinuse) {
  np_listener *a, *b = (np_listener *)&b;

  if (npt_under_wine()) {
    printf("skip test_pipe_win_second_listener_is_eaddrinuse: Wine does "
           "not enforce FILE_FLAG_FIRST_PIPE_INSTANCE\n");
    return;
  }
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &a), 0);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L + 1, &b),
                   NP_EADDRINUSE);
  ck_assert_ptr_null(b);
  np_listener_close(a);
  free_poll_no_leak();
}
END_TEST

/* What Windows answers for a taken name maps to NP_EADDRINUSE; a later
 * instance refused is NP_EACCES; nothing is left behind either way. */
START_TEST(test_pipe_win_name_taken_maps_to_eaddrinuse) {
  np_listener *l = (np_listener *)&l;
  np_options o;

  fail_create_on = 0;
  fail_create_with = ERROR_ACCESS_DENIED;
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), NP_EADDRINUSE);
  ck_assert_ptr_null(l);
  reset_records();
  fail_create_on = 0;
  fail_create_with = ERROR_PIPE_BUSY;
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), NP_EADDRINUSE);
  reset_records();
  memset(&o, 0, sizeof(o));
  o.backlog = 3;
  fail_create_on = 2;
  fail_create_with = ERROR_ACCESS_DENIED;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), NP_EACCES);
  ck_assert_ptr_null(l);
  ck_assert_int_eq(npcalls, 3);
  /* The name was released: a new listener gets it. */
  reset_records();
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* Windows reports PIPE_REJECT_REMOTE_CLIENTS back; Wine does not. */
START_TEST(test_pipe_win_reject_remote_reported) {
  np_listener *l;
  DWORD flags = 0;

  if (npt_under_wine()) {
    printf("skip test_pipe_win_reject_remote_reported: Wine's "
           "GetNamedPipeInfo does not report PIPE_REJECT_REMOTE_CLIENTS\n");
    return;
  }
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert(GetNamedPipeInfo(pcalls[0].handle, &flags, NULL, NULL, NULL));
  ck_assert(flags & PIPE_REJECT_REMOTE_CLIENTS);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* The server sees the identification level the client asked for;
 * Wine always reports impersonation. */
START_TEST(test_pipe_win_server_cannot_impersonate) {
  np_listener *l;
  np_stream *c, *s;
  HANDLE token;
  SECURITY_IMPERSONATION_LEVEL level = SecurityAnonymous;
  DWORD len;
  char buf[4];
  BOOL impersonated, opened;

  if (npt_under_wine()) {
    printf("skip test_pipe_win_server_cannot_impersonate: Wine ignores "
           "the client's SQOS impersonation level\n");
    return;
  }
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_write(c, "x", 1), 1);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 1);
  impersonated = ImpersonateNamedPipeClient(pipe_of(s)->handle);
  opened = impersonated &&
           OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token);
  if (impersonated)
    RevertToSelf();
  ck_assert(opened);
  ck_assert(GetTokenInformation(token, TokenImpersonationLevel, &level,
                                sizeof(level), &len));
  CloseHandle(token);
  ck_assert_int_eq(level, SecurityIdentification);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* ---- lifetime ---------------------------------------------------------- */

/* Scenario 12: closing a stream whose read is in flight closes its handle
 * at once (the peer sees the end, the name goes away) without waiting
 * for the poller to reap the cancelled read. */
START_TEST(test_pipe_win_close_with_read_releases_handle_and_name) {
  np_listener *l;
  np_stream *s;
  HANDLE h, again;
  DWORD avail, err;
  BOOL ok;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  h = CreateFileW(wname_, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                  0, NULL);
  ck_assert(h != INVALID_HANDLE_VALUE);
  s = accept_one(l, TOK_S, NP_READABLE);
  /* The first read waits for a wait or an np_read: start it. */
  ck_assert_int_eq(np_read(s, &avail, 1), NP_EAGAIN);
  ck_assert_int_eq(pipe_of(s)->rstate, NP__READ_PROBE);
  np_listener_close(l);
  np_close(s);
  /* No np_poll_wait since: the handle is closed all the same.  (Check's
   * own calls reset GetLastError, so it is read at once.) */
  ok = PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL);
  err = GetLastError();
  ck_assert(!ok);
  ck_assert_uint_eq(err, ERROR_BROKEN_PIPE);
  again = CreateFileW(wname_, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                      OPEN_EXISTING, 0, NULL);
  err = GetLastError();
  ck_assert(again == INVALID_HANDLE_VALUE);
  ck_assert_uint_eq(err, ERROR_FILE_NOT_FOUND);
  CloseHandle(h);
  free_poll_no_leak();
}
END_TEST

/* Writes accepted before the server closes still arrive; the handle
 * closes after them. */
START_TEST(test_pipe_win_server_close_flushes_writes) {
  enum { N = 512 * 1024 };
  unsigned char *out = malloc(N), *in = malloc(N);
  np_listener *l;
  np_stream *c, *s;
  size_t got = 0;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  fill(out, N, 3);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_write(s, out, N), N);
  np_close(s);
  np_listener_close(l);
  ck_assert_int_eq(np_stream_set_interest(c, TOK_C, NP_READABLE), 0);
  while (got < N) {
    ptrdiff_t r = read_next(c, TOK_C, in + got, N - got);

    ck_assert_int_gt(r, 0);
    got += (size_t)r;
  }
  ck_assert_int_eq(memcmp(in, out, N), 0);
  ck_assert_int_eq(read_next(c, TOK_C, in, N), NP_EOF);
  np_close(c);
  free_poll_no_leak();
  free(out);
  free(in);
}
END_TEST

/* np_poll_free with a closed stream still flushing to a peer that never
 * reads: the write is cancelled and every object freed (not leaked at
 * the end of a bounded wait). */
START_TEST(test_pipe_win_poll_free_cancels_unread_writes) {
  enum { N = 1024 * 1024 };
  unsigned char *out = malloc(N);
  np_listener *l;
  np_stream *c, *s, *extra;

  ck_assert_ptr_nonnull(out);
  fill(out, N, 5);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_write(c, out, N), N);
  ck_assert(pipe_of(c)->wbusy);
  np_close(c);
  /* One more client waiting, never accepted, and one reading. */
  ck_assert_int_eq(np_connect(poll_, name_, NULL, 9, NP_READABLE, &extra), 0);
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, 0), 0);
  free_poll_no_leak();
  free(out);
}
END_TEST

/* After an accept the replacement listens at once: a second client gets
 * in without a poll or another accept (backlog 1). */
START_TEST(test_pipe_win_accept_creates_replacement_first) {
  np_listener *l;
  np_stream *c1, *c2, *s;
  np_options o;

  memset(&o, 0, sizeof(o));
  o.backlog = 1;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c1), 0);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C + 10, 0, &c2), 0);
  np_close(c2);
  np_close(c1);
  np_close(s);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* ---- bounded teardown and shortages ------------------------------------ */

/* Calls of the pipe I/O functions, seen through the seam. */
struct io_count {
  int fn_read, fn_write;
  unsigned long reads, writes, failed;
};

static long count_io(struct np__seam_call *c, int after, void *ctx) {
  struct io_count *n = ctx;

  if (!after)
    return 0;
  if (c->fn == n->fn_read)
    n->reads++;
  else if (c->fn == n->fn_write)
    n->writes++;
  if (c->injected)
    n->failed++;
  return 0;
}

/* Replaces the recorder with a counter of ReadFile and WriteFile. */
static void count_io_start(struct io_count *n) {
  memset(n, 0, sizeof(*n));
  n->fn_read = np__seam_fn_id("ReadFile");
  n->fn_write = np__seam_fn_id("WriteFile");
  ck_assert_int_ge(n->fn_read, 0);
  ck_assert_int_ge(n->fn_write, 0);
  np__seam_observe(count_io, n);
}

/* Reads what a plain handle holds until the pipe reports its end;
 * returns the byte count.  A server end still open (nothing to read,
 * yet no end) fails the test. */
static size_t raw_read_to_end(HANDLE h) {
  static char buf[65536];
  size_t total = 0;
  DWORD avail = 0, got, err;

  for (;;) {
    BOOL ok = PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL);

    err = GetLastError();
    if (!ok)
      break;
    ck_assert_msg(avail > 0, "the server end is still open");
    if (avail > sizeof(buf))
      avail = sizeof(buf);
    ck_assert(ReadFile(h, buf, avail, &got, NULL));
    total += got;
  }
  ck_assert_uint_eq(err, ERROR_BROKEN_PIPE);
  return total;
}

/* np_poll_free closes every handle it owns before it waits for the
 * port, even where cancelling does not work (CancelIoEx fails here): a
 * stream stuck with bytes for a peer that never reads, and a TCP
 * listener's poll, end at once.  The peer finds the end after what the
 * pipe held, the name is gone (a client finds no instance, where a
 * leaked handle would answer ERROR_PIPE_BUSY), a new listener gets the
 * name, and nothing is leaked. */
START_TEST(test_pipe_win_poll_free_closes_stuck_handles) {
  enum { N = 1024 * 1024 };
  unsigned char *out = malloc(N);
  np_listener *l, *tl;
  np_stream *s, *c;
  HANDLE h, again;
  uint64_t start, took;
  DWORD err;

  ck_assert_ptr_nonnull(out);
  fill(out, N, 7);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_listen(poll_, "tcp:127.0.0.1:0", NULL, 9, &tl), 0);
  h = CreateFileW(wname_, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                  0, NULL);
  ck_assert(h != INVALID_HANDLE_VALUE);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_write(s, out, N), N);
  ck_assert(pipe_of(s)->wbusy);
  np_close(s);
  np__seam_fail_fn(np__seam_fn_id("CancelIoEx"), 0, 0);
  start = npt_now_ms();
  np_poll_free(poll_);
  poll_ = NULL;
  took = npt_now_ms() - start;
  np__seam_reset();
  printf("np_poll_free with CancelIoEx failing: %llu ms\n",
         (unsigned long long)took);
  ck_assert_uint_lt(took, 1000);
  ck_assert_int_eq(np__pipe_live, 0);
  ck_assert_uint_lt(raw_read_to_end(h), N);
  CloseHandle(h);
  again = CreateFileW(wname_, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                      OPEN_EXISTING, 0, NULL);
  err = GetLastError();
  ck_assert(again == INVALID_HANDLE_VALUE);
  ck_assert_uint_eq(err, ERROR_FILE_NOT_FOUND);
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
  free(out);
}
END_TEST

/* np_abort, pipe and TCP: the peer finds the end (a reset for TCP) at
 * once, without the bytes that were still queued, and the aborted end
 * leaves nothing to flush.  Wine closes a socket gracefully whatever
 * SO_LINGER says, so its peer finds a clean end instead of the reset. */
START_TEST(test_pipe_win_abort_ends_at_once) {
  enum { N = 1024 * 1024 };
  unsigned char *out = malloc(N), *in = malloc(N);
  char addr[64];
  np_listener *l;
  np_stream *c, *s;
  size_t got = 0;
  ptrdiff_t r;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  fill(out, N, 11);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_write(c, out, N), N);
  np_abort(c);
  ck_assert_int_eq(np_poll_flush(poll_, 0), 0);
  while ((r = read_next(s, TOK_S, in + got, N - got)) > 0)
    got += (size_t)r;
  ck_assert_int_eq(r, NP_EOF);
  ck_assert_uint_lt(got, N);
  ck_assert_int_eq(memcmp(in, out, got), 0);
  np_close(s);
  np_listener_close(l);
  /* TCP: SO_LINGER {1, 0}, so the peer's next read is a reset. */
  ck_assert_int_eq(np_listen(poll_, "tcp:127.0.0.1:0", NULL, TOK_L, &l), 0);
  ck_assert_int_gt(np_listener_address(l, addr, sizeof(addr)), 0);
  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, NP_WRITABLE, &c), 0);
  ck_assert_uint_ne(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_write(c, "abc", 3), 3);
  ck_assert_int_eq(read_next(s, TOK_S, in, 3), 3);
  np_abort(c);
  r = read_next(s, TOK_S, in, 3);
  if (npt_under_wine() && r == NP_EOF)
    printf("test_pipe_win_abort_ends_at_once: Wine sends no TCP reset\n");
  else
    ck_assert_int_eq(r, NP_ECONNRESET);
  np_close(s);
  np_listener_close(l);
  free_poll_no_leak();
  free(out);
  free(in);
}
END_TEST

/* Reads and writes that fail for want of resources (as on a machine
 * short of non-paged pool or quota) are tried again: every byte or
 * message arrives intact, no error reaches the user, and each failure
 * costs one retry. */
static void shortage_passes(uint32_t flags, DWORD err) {
  static const size_t sizes[] = {300000, 1, 5000, 0, 70000};
  enum { BUF = 300000 };
  unsigned char *out = malloc(BUF), *in = malloc(BUF);
  struct io_count n;
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t i, got;
  ptrdiff_t r;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  memset(&o, 0, sizeof(o));
  o.flags = flags;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  count_io_start(&n);
  np__seam_fail_fn(n.fn_write, (long)err, 3);
  np__seam_fail_fn(n.fn_read, (long)err, 3);
  for (i = 0; i < NP__ARRAY_SIZE(sizes); i++) {
    /* Byte mode: the first size only. */
    if (!(flags & NP_OPT_MESSAGE) && i > 0)
      break;
    fill(out, sizes[i], (unsigned)i);
    ck_assert_int_eq(np_write(c, out, sizes[i]), (ptrdiff_t)sizes[i]);
    if (flags & NP_OPT_MESSAGE) {
      ck_assert_int_eq(read_next(s, TOK_S, in, BUF), (ptrdiff_t)sizes[i]);
    } else {
      for (got = 0; got < sizes[i]; got += (size_t)r) {
        r = read_next(s, TOK_S, in + got, sizes[i] - got);
        ck_assert_int_gt(r, 0);
      }
    }
    ck_assert_msg(memcmp(in, out, sizes[i]) == 0, "%zu bytes differ",
                  sizes[i]);
  }
  ck_assert_uint_eq(n.failed, 6);
  ck_assert_int_eq(np_stream_error(c), 0);
  ck_assert_int_eq(np_stream_error(s), 0);
  np__seam_reset();
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free(out);
  free(in);
}

START_TEST(test_pipe_win_shortage_is_retried) {
  shortage_passes(0, ERROR_NOT_ENOUGH_QUOTA);
  shortage_passes(0, ERROR_NO_SYSTEM_RESOURCES);
  shortage_passes(NP_OPT_MESSAGE, ERROR_INVALID_USER_BUFFER);
  shortage_passes(NP_OPT_MESSAGE, ERROR_NOT_ENOUGH_MEMORY);
  free_poll_no_leak();
}
END_TEST

/* A shortage that lasts NP__PIPE_RETRY_FOR_MS ends both slots with
 * NP_ENOBUFS (reported as NP_ERR for the writer, by np_read for the
 * reader); meanwhile the retries back off (dozens of calls, not
 * thousands) and the poller sleeps between them. */
START_TEST(test_pipe_win_lasting_shortage_fails) {
  struct io_count n;
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];
  uint64_t start, took;
  int write_failed = 0, read_failed = 0, waits = 0;
  char buf[8];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, NP_WRITABLE, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  count_io_start(&n);
  np__seam_fail_fn(n.fn_write, ERROR_NOT_ENOUGH_QUOTA, 0);
  np__seam_fail_fn(n.fn_read, ERROR_WORKING_SET_QUOTA, 0);
  start = npt_now_ms();
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  /* Writable all along: only the change that the failure brings is to
   * end a wait. */
  ck_assert_int_eq(np_stream_set_interest(c, TOK_C, NP_WRITABLE | NP_EDGE),
                   0);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 1);
  while (!(write_failed && read_failed)) {
    int k, got;

    ck_assert_msg(npt_now_ms() - start < NP__PIPE_RETRY_FOR_MS + WAIT_MS,
                  "no failure yet");
    got = np_poll_wait(poll_, ev, 8, 1000);
    ck_assert_int_ge(got, 0);
    waits++;
    for (k = 0; k < got; k++) {
      if (ev[k].token == TOK_C && (ev[k].events & NP_ERR)) {
        ck_assert_int_eq(np_stream_error(c), NP_ENOBUFS);
        write_failed = 1;
      }
      if (ev[k].token == TOK_S && !read_failed) {
        ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_ENOBUFS);
        read_failed = 1;
      }
    }
  }
  took = npt_now_ms() - start;
  printf("lasting shortage: failed after %llu ms, %lu reads, %lu writes, "
         "%d waits\n",
         (unsigned long long)took, n.reads, n.writes, waits);
  ck_assert_uint_ge(took, NP__PIPE_RETRY_FOR_MS - 100);
  ck_assert_uint_ge(n.writes, 10);
  ck_assert_uint_le(n.writes, 200);
  ck_assert_uint_ge(n.reads, 10);
  ck_assert_uint_le(n.reads, 200);
  ck_assert_int_le(waits, 20);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ENOBUFS);
  np__seam_reset();
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A stream closed while a write waits for its retry still delivers:
 * the retry goes on after np_close, and np_poll_flush waits for it. */
START_TEST(test_pipe_win_close_during_retry_delivers) {
  struct io_count n;
  np_listener *l;
  np_stream *c, *s;
  char buf[16];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  count_io_start(&n);
  np__seam_fail_fn(n.fn_write, ERROR_NO_SYSTEM_RESOURCES, 5);
  ck_assert_int_eq(np_write(c, "parting", 7), 7);
  ck_assert(pipe_of(c)->wwaiting);
  np_close(c);
  ck_assert_int_eq(np_poll_flush(poll_, 0), NP_ETIMEDOUT);
  ck_assert_int_eq(np_poll_flush(poll_, WAIT_MS), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 7);
  ck_assert_int_eq(memcmp(buf, "parting", 7), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np__seam_reset();
  np_close(s);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* ---- data path --------------------------------------------------------- */

/* Message sizes around every buffer boundary, larger than the pool's
 * largest class too: each arrives whole, in order, never merged. */
START_TEST(test_pipe_win_message_sizes) {
  static const size_t sizes[] = {0,       1,     4095,  4096,    4097,
                                 65535,   65536, 65537, 1 << 20, (1 << 20) + 1,
                                 3 << 20, 5};
  enum { BUF = 4 << 20 };
  unsigned char *out = malloc(BUF), *in = malloc(BUF);
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t i;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  o.write_limit = 16u << 20;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  for (i = 0; i < NP__ARRAY_SIZE(sizes); i++) {
    fill(out, sizes[i], (unsigned)i);
    ck_assert_int_eq(np_write(c, out, sizes[i]), (ptrdiff_t)sizes[i]);
  }
  for (i = 0; i < NP__ARRAY_SIZE(sizes); i++) {
    ptrdiff_t r;

    if (sizes[i] > 1)
      ck_assert_int_eq(read_next(s, TOK_S, in, sizes[i] - 1), NP_EMSGSIZE);
    r = read_next(s, TOK_S, in, BUF);
    ck_assert_msg(r == (ptrdiff_t)sizes[i], "message %zu: %td bytes", i, r);
    fill(out, sizes[i], (unsigned)i);
    ck_assert_msg(memcmp(in, out, sizes[i]) == 0, "message %zu differs", i);
  }
  ck_assert_int_eq(np_read(s, in, BUF), NP_EAGAIN);
  np_close(c);
  ck_assert_int_eq(read_next(s, TOK_S, in, BUF), NP_EOF);
  np_close(s);
  np_listener_close(l);
  free_poll_no_leak();
  free(out);
  free(in);
}
END_TEST

/* A small message arrives with the probe itself: when READABLE is
 * reported the bytes are already read (one read per message, as in a raw
 * overlapped loop), and the stream goes back to its probe without a pool
 * buffer.  A message larger than the probe arrives whole too, the rest
 * read by np_read, and the stream stays busy (a real read in flight)
 * until a read brings no more than a probe would. */
START_TEST(test_pipe_win_small_message_rides_probe) {
  static unsigned char big[3000], in[4096];
  np_listener *l;
  np_stream *c, *s;
  struct np__pipe *p;

  fill(big, sizeof(big), 5);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, NP_WRITABLE, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  p = pipe_of(s);
  ck_assert_int_eq(np_read(s, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  ck_assert_int_eq(np_write(c, "ping", 4), 4);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(p->rstate, NP__READ_DATA);
  ck_assert_int_eq(np_read(s, in, sizeof(in)), 4);
  ck_assert_int_eq(memcmp(in, "ping", 4), 0);
  ck_assert_int_eq(np_read(s, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  ck_assert_ptr_null(p->rbuf);
  ck_assert_int_eq(np_write(c, big, sizeof(big)), (ptrdiff_t)sizeof(big));
  ck_assert_int_eq(read_next(s, TOK_S, in, sizeof(in)),
                   (ptrdiff_t)sizeof(big));
  ck_assert_int_eq(memcmp(in, big, sizeof(big)), 0);
  /* A read that brought more than a probe holds marks the stream busy:
   * a real read stays in flight, so the next chunk costs one read. */
  ck_assert_int_eq(np_read(s, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(p->rfull, 1);
  ck_assert_int_eq(p->rstate, NP__READ_PENDING);
  ck_assert_ptr_nonnull(p->rbuf);
  /* A read no larger than a probe sends it back to the probe. */
  ck_assert_int_eq(np_write(c, "ping", 4), 4);
  ck_assert_int_eq(read_next(s, TOK_S, in, sizeof(in)), 4);
  ck_assert_int_eq(np_read(s, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(p->rfull, 0);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  ck_assert_ptr_null(p->rbuf);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A new stream's first read is deferred to the poller's next OS wait:
 * a connection accepted and closed before it makes no read (nor a
 * cancel), and the wait starts the probe. */
START_TEST(test_pipe_win_first_read_waits_for_poll) {
  np_listener *l;
  np_stream *c, *s, *s2;
  np_event ev[8];
  struct np__pipe *p;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  p = pipe_of(s);
  ck_assert_int_eq(p->rstate, NP__READ_IDLE);
  ck_assert_int_eq(p->rdeferred, 1);
  np_close(s);
  np_close(c);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s2 = accept_one(l, TOK_S, NP_READABLE);
  p = pipe_of(s2);
  ck_assert_int_eq(p->rdeferred, 1);
  ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(p->rdeferred, 0);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  ck_assert_int_eq(np_write(c, "hi", 2), 2);
  ck_assert_int_eq(read_next(s2, TOK_S, ev, sizeof(ev)), 2);
  np_close(s2);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* An np_read that takes exactly what the last read brought leaves the
 * next read for the poller's next OS wait or np_read: a client closed
 * after reading its reply makes no read it would have to cancel.  One
 * with room to spare reads on at once, and the bytes are all there. */
START_TEST(test_pipe_win_exact_read_defers_next) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];
  struct np__pipe *p;
  char in[8];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, NP_READABLE, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  p = pipe_of(c);
  ck_assert_int_eq(np_write(s, "y", 1), 1);
  ck_assert_int_eq(read_next(c, TOK_C, in, 1), 1);
  ck_assert_int_eq(in[0], 'y');
  ck_assert_int_eq(p->rstate, NP__READ_IDLE);
  ck_assert_int_eq(p->rdeferred, 1);
  /* The wait starts it; bytes written meanwhile are not lost. */
  ck_assert_int_eq(np_write(s, "zz", 2), 2);
  ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(p->rdeferred, 0);
  ck_assert_int_eq(read_next(c, TOK_C, in, sizeof(in)), 2);
  ck_assert_int_eq(memcmp(in, "zz", 2), 0);
  /* Room to spare: the next read (a probe) is in flight already. */
  ck_assert_int_eq(p->rdeferred, 0);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  /* Exact again, then np_read itself starts the deferred read. */
  ck_assert_int_eq(np_write(s, "ab", 2), 2);
  ck_assert_int_eq(read_next(c, TOK_C, in, 2), 2);
  ck_assert_int_eq(p->rdeferred, 1);
  ck_assert_int_eq(np_read(c, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(p->rdeferred, 0);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A deferred read that completes at once ends the wait without asking
 * the port, but only every other wait: a stream whose reads keep
 * completing at once cannot starve completions queued for others. */
START_TEST(test_pipe_win_deferred_reads_do_not_starve_port) {
  np_listener *l;
  np_stream *ca, *cb, *sa, *sb;
  np_event ev[8];
  uint64_t t0;
  char in[8];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &ca), 0);
  sa = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &cb), 0);
  sb = accept_one(l, TOK_S + 1, NP_READABLE);
  /* Both reads in flight, and a wait that asks the port. */
  ck_assert_int_eq(np_read(sa, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(np_read(sb, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  /* An exact read defers sa's next read. */
  ck_assert_int_eq(np_write(ca, "aa", 2), 2);
  ck_assert_int_eq(read_next(sa, TOK_S, in, 2), 2);
  /* sb's completion waits in the port; sa's bytes are there. */
  ck_assert_int_eq(np_write(cb, "b", 1), 1);
  ck_assert_int_eq(np_write(ca, "aa", 2), 2);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, WAIT_MS), 1);
  ck_assert_uint_eq(ev[0].token, TOK_S);
  ck_assert_int_eq(np_read(sa, in, 2), 2);
  /* Exact again: sa's next read is deferred and completes at once, and
   * this time the port is asked too. */
  ck_assert_int_eq(np_write(ca, "aa", 2), 2);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, WAIT_MS), 2);
  ck_assert_uint_eq(ev[0].token + ev[1].token, 2 * TOK_S + 1);
  ck_assert_int_eq(np_read(sa, in, sizeof(in)), 2);
  ck_assert_int_eq(memcmp(in, "aa", 2), 0);
  ck_assert_int_eq(np_read(sb, in, sizeof(in)), 1);
  ck_assert_int_eq(in[0], 'b');
  /* A posted wake-up is taken by the wait it ends, even one that only a
   * deferred read made ready: the wait after it blocks again. */
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(np_write(ca, "cc", 2), 2);
  ck_assert_int_eq(read_next(sa, TOK_S, in, 2), 2);
  ck_assert_int_eq(np_write(ca, "dd", 2), 2);
  ck_assert_int_eq(np_poll_wake(poll_), 0);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, WAIT_MS), 1);
  ck_assert_uint_eq(ev[0].token, TOK_S);
  ck_assert_int_eq(np_read(sa, in, sizeof(in)), 2);
  t0 = npt_now_ms();
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 300), 0);
  ck_assert_uint_ge(npt_now_ms() - t0, 200);
  /* A look that may not block takes what the port holds as well. */
  ck_assert_int_eq(np_write(ca, "ee", 2), 2);
  ck_assert_int_eq(read_next(sa, TOK_S, in, 2), 2);
  ck_assert_int_eq(np_read(sb, in, sizeof(in)), NP_EAGAIN);
  ck_assert_int_eq(np_write(cb, "f", 1), 1);
  ck_assert_int_eq(np_write(ca, "gg", 2), 2);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 2);
  ck_assert_uint_eq(ev[0].token + ev[1].token, 2 * TOK_S + 1);
  np_close(sa);
  np_close(sb);
  np_close(ca);
  np_close(cb);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A wait that may not block asks the port only when something can be
 * in it: an operation in flight or a posted wake-up.  Either way the
 * answer is the same, and nothing that could arrive is missed. */
START_TEST(test_pipe_win_empty_port_not_asked) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];
  char in[8];

  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(ndequeues, 0);
  /* A wake-up is a packet: it is taken, and reported as no event. */
  ck_assert_int_eq(np_poll_wake(poll_), 0);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(ndequeues, 1);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(ndequeues, 1);
  /* A listener's connect is in flight: every wait asks. */
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(ndequeues, 2);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, NP_READABLE, &c), 0);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_write(s, "y", 1), 1);
  ck_assert_int_eq(read_next(c, TOK_C, in, 1), 1);
  np_close(c);
  np_close(s);
  np_listener_close(l);
  /* Everything closed and come back: the port is not asked again. */
  while (np_poll_wait(poll_, ev, 8, 50) > 0)
    ;
  ndequeues = 0;
  ck_assert_int_eq(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(ndequeues, 0);
  free_poll_no_leak();
}
END_TEST

/* Bulk traffic grows the read buffer past 64 KiB; quiet traffic shrinks
 * it; an idle byte stream waits with its probe and no buffer. */
START_TEST(test_pipe_win_read_buffer_adapts) {
  enum { N = 8 << 20, CHUNK = 256 * 1024 };
  unsigned char *out = malloc(CHUNK), *in = malloc(1 << 20);
  np_listener *l;
  np_stream *c, *s;
  struct np__pipe *p;
  size_t sent = 0, got = 0, most = 0;
  int round;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  fill(out, CHUNK, 9);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, NP_WRITABLE, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  p = pipe_of(s);
  while (got < N) {
    np_event ev[8];
    ptrdiff_t r;

    while (sent < N && (r = np_write(c, out, CHUNK)) > 0)
      sent += (size_t)r;
    while ((r = np_read(s, in, 1 << 20)) > 0)
      got += (size_t)r;
    ck_assert_int_eq(r, NP_EAGAIN);
    if (p->rsize > most)
      most = p->rsize;
    ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 1000), 0);
  }
  ck_assert_uint_gt(most, 65536);
  for (round = 0; round < 12; round++) {
    ck_assert_int_eq(np_write(c, "tick", 4), 4);
    ck_assert_int_eq(read_next(s, TOK_S, in, 1 << 20), 4);
  }
  ck_assert_uint_le(p->rsize, 16384);
  ck_assert_int_eq(np_read(s, in, 1 << 20), NP_EAGAIN);
  ck_assert_int_eq(p->rstate, NP__READ_PROBE);
  ck_assert_ptr_null(p->rbuf);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
  free(out);
  free(in);
}
END_TEST

/* ---- close storm ------------------------------------------------------- */

#define STORM_MAX 12

struct storm {
  np_poll *poll;
  np_listener *l;
  np_stream *s[STORM_MAX];
  int n;
  uint32_t rng;
  unsigned char *buf;
};

static uint32_t storm_rand(struct storm *st, uint32_t below) {
  st->rng = st->rng * 1103515245u + 12345u;
  return (st->rng >> 8) % below;
}

static void storm_add(struct storm *st, np_stream *s) {
  if (st->n < STORM_MAX)
    st->s[st->n++] = s;
  else
    np_close(s);
}

static void storm_close_one(struct storm *st, int i) {
  np_close(st->s[i]);
  st->s[i] = st->s[--st->n];
}

/* One random action on the storm's objects; results are only checked to
 * be among the documented ones. */
static void storm_step(struct storm *st, uint32_t flags) {
  np_stream *s;
  np_options o;
  np_event ev[16];
  ptrdiff_t r;
  int i = st->n > 0 ? (int)storm_rand(st, (uint32_t)st->n) : -1;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  switch (storm_rand(st, 9)) {
  case 0:
    if (np_connect(st->poll, name_, &o, 100, NP_READABLE | NP_WRITABLE, &s) ==
        0)
      storm_add(st, s);
    break;
  case 1:
    if (st->l != NULL && np_accept(st->l, 200, storm_rand(st, 4), &s) == 0)
      storm_add(st, s);
    break;
  case 2:
    if (i >= 0) {
      r = np_write(st->s[i], st->buf, storm_rand(st, 300000));
      ck_assert(r >= 0 || r == NP_EAGAIN || r == NP_EPIPE ||
                r == NP_ESHUTDOWN || r == NP_EMSGSIZE);
    }
    break;
  case 3:
    if (i >= 0) {
      r = np_read(st->s[i], st->buf, 1 + storm_rand(st, 400000));
      ck_assert(r >= 0 || r == NP_EAGAIN || r == NP_EOF || r == NP_EMSGSIZE);
    }
    break;
  case 4:
    if (i >= 0)
      storm_close_one(st, i);
    break;
  case 5:
    ck_assert_int_ge(np_poll_wait(st->poll, ev, 16, (int)storm_rand(st, 3)),
                     0);
    break;
  case 6:
    if (i >= 0)
      np_shutdown(st->s[i]);
    break;
  case 7:
    if (i >= 0)
      ck_assert_int_eq(
          np_stream_set_interest(st->s[i], 300, storm_rand(st, 4)), 0);
    break;
  default:
    if (st->l != NULL && storm_rand(st, 4) == 0) {
      np_listener_close(st->l);
      st->l = NULL;
    }
    break;
  }
}

/* Random sequences of open, write, read, shutdown and close, ended by
 * closing everything or by np_poll_free with operations in flight: no
 * crash, and every pipe object freed. */
START_TEST(test_pipe_win_close_storm) {
  struct storm st;
  int round, step;

  memset(&st, 0, sizeof(st));
  st.rng = 20261122u;
  st.buf = malloc(400000);
  ck_assert_ptr_nonnull(st.buf);
  memset(st.buf, 'x', 400000);
  for (round = 0; round < 300; round++) {
    uint32_t flags = storm_rand(&st, 2) ? NP_OPT_MESSAGE : 0;
    np_options o;

    memset(&o, 0, sizeof(o));
    o.flags = flags;
    o.backlog = 1 + (int)storm_rand(&st, 4);
    ck_assert_int_eq(np_poll_new(&st.poll), 0);
    ck_assert_int_eq(np_listen(st.poll, name_, &o, 1, &st.l), 0);
    st.n = 0;
    for (step = 0; step < 40; step++)
      storm_step(&st, flags);
    if (storm_rand(&st, 2)) {
      while (st.n > 0)
        storm_close_one(&st, 0);
      if (st.l != NULL)
        np_listener_close(st.l);
    }
    st.l = NULL;
    np_poll_free(st.poll);
    ck_assert_msg(np__pipe_live == 0, "round %d: %ld objects left", round,
                  (long)np__pipe_live);
  }
  free(st.buf);
  free_poll_no_leak();
}
END_TEST

/* ---- listeners heal ----------------------------------------------------- */

/* No event for tok within ms (the poller runs meanwhile). */
static void no_event_for(uint64_t tok, int ms) {
  uint64_t deadline = npt_now_ms() + (uint64_t)ms;
  np_event ev[8];

  while (npt_now_ms() < deadline) {
    int n = np_poll_wait(poll_, ev, 8, 10);

    ck_assert_int_ge(n, 0);
    while (n-- > 0)
      ck_assert_msg(ev[n].token != tok, "event %#x for token %u",
                    (unsigned)ev[n].events, (unsigned)tok);
  }
}

/* A listener of backlog 1 whose refill in np_accept failed (arm_fault says
 * how) has no instance left; a client that waits for it is served all
 * the same, because the poller's timer makes the instance again, and no
 * error is reported. */
static void heals_after(void (*arm_fault)(void)) {
  np_options o;
  np_listener *l;
  np_stream *c, *s, *c2, *s2;
  char buf[4];

  memset(&o, 0, sizeof(o));
  o.backlog = 1;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  arm_fault();
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np__seam_injected(), 1);
  /* Nothing listens now: s's instance is the name's only one. */
  ck_assert_int_eq(np__pipe_live, 2);
  o.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 2000;
  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C + 10, NP_READABLE | NP_WRITABLE, &c2),
      0);
  /* Not np_accept, which would refill: the poller alone. */
  ck_assert_uint_eq(await_tok(TOK_C + 10, NP_WRITABLE) & NP_ERR, 0);
  s2 = accept_one(l, TOK_S + 10, NP_READABLE | NP_WRITABLE);
  ck_assert_int_eq(np_write(c2, "hi", 2), 2);
  ck_assert_int_eq(read_next(s2, TOK_S + 10, buf, sizeof(buf)), 2);
  ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
  no_event_for(TOK_L, 30);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s), NP_EAGAIN);
  np_close(s2);
  np_close(c2);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}

static void fail_next_create(void) {
  fail_create_with = ERROR_NO_SYSTEM_RESOURCES;
  fail_create_on = npcalls;
}

static void fail_next_connect(void) {
  np__seam_fail_fn(fn_connect_pipe, ERROR_NOT_ENOUGH_QUOTA, 1);
}

START_TEST(test_pipe_win_listener_heals_failed_create) {
  heals_after(fail_next_create);
}
END_TEST

START_TEST(test_pipe_win_listener_heals_failed_connect) {
  heals_after(fail_next_connect);
}
END_TEST

/* An error that retries cannot fix is reported once: NP_ERR on the
 * listener's token, then np_accept returns it once.  A lasting shortage
 * is reported after a bounded number of retries, which go on (slowly)
 * after that: once the shortage ends the listener serves again.  A
 * denied creation is reported at once. */
START_TEST(test_pipe_win_listener_reports_lasting_failure) {
  np_options o;
  np_listener *l;
  np_stream *c, *s, *s2;
  uint64_t start;

  memset(&o, 0, sizeof(o));
  o.backlog = 1;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  np__seam_fail_fn(fn_create_pipe, ERROR_NO_SYSTEM_RESOURCES, 0);
  start = npt_now_ms();
  s = accept_one(l, TOK_S, 0);
  ck_assert_uint_ne(await_tok(TOK_L, NP_ERR), 0);
  ck_assert_uint_ge(npt_now_ms() - start, 500);
  ck_assert_int_ge(np__seam_injected(), 10);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s2), NP_ENOBUFS);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s2), NP_EAGAIN);
  no_event_for(TOK_L, 50);
  /* The shortage ends: within a retry interval an instance listens. */
  np__seam_reset();
  np__seam_observe(recorder, NULL);
  np_close(c);
  o.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 3000;
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, NP_WRITABLE, &c), 0);
  ck_assert_uint_eq(await_tok(TOK_C, NP_WRITABLE) & NP_ERR, 0);
  s2 = accept_one(l, TOK_S + 10, 0);
  np_close(s2);
  np_close(c);
  /* Denied: no retry fixes that. */
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  fail_create_with = ERROR_ACCESS_DENIED;
  fail_create_on = npcalls;
  np_close(s);
  s = accept_one(l, TOK_S, 0);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s2), NP_EACCES);
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s2), NP_EAGAIN);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* ---- connect waits ----------------------------------------------------- */

/* Waiting for an absent or busy name never sleeps nor blocks: the
 * stream is handed out connecting, a few dozen opens are made in 600 ms
 * (not thousands), and the timeout arrives as NP_ERR. */
START_TEST(test_pipe_win_wait_does_not_spin) {
  np_options o;
  np_listener *l;
  np_stream *c, *late;
  uint64_t start;

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 600;
  start = npt_now_ms();
  ck_assert_int_eq(np_connect(poll_, name_, &o, 1, NP_WRITABLE, &late), 0);
  ck_assert_uint_lt(npt_now_ms() - start, 100);
  await_tok(1, NP_ERR);
  ck_assert_uint_ge(npt_now_ms() - start, 600);
  ck_assert_int_eq(np_stream_error(late), NP_ETIMEDOUT);
  np_close(late);
  ck_assert_int_ge(nfcalls, 2);
  ck_assert_int_le(nfcalls, 100);
  o.backlog = 1;
  o.flags = 0;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  reset_records();
  o.flags = NP_OPT_WAIT_BUSY;
  ck_assert_int_eq(np_connect(poll_, name_, &o, 1, NP_WRITABLE, &late), 0);
  await_tok(1, NP_ERR);
  ck_assert_int_eq(np_stream_error(late), NP_ETIMEDOUT);
  np_close(late);
  ck_assert_int_ge(nfcalls, 2);
  ck_assert_int_le(nfcalls, 100);
  ck_assert_int_eq(nsleeps, 0);
  np_close(c);
  np_listener_close(l);
  /* One left connecting: np_poll_free frees it. */
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = -1;
  ck_assert_int_eq(np_connect(poll_, name_, &o, 1, NP_WRITABLE, &late), 0);
  free_poll_no_leak();
}
END_TEST

/* The worker's path to a server that is there: connecting at first
 * (even without wait flags), then writable, and bytes flow; an
 * np_shutdown made meanwhile applies once connected (in message mode
 * the server reads the empty message that stands for it). */
START_TEST(test_pipe_win_worker_connects) {
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  char buf[8];

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(connect_on_worker(&o, TOK_C, NP_READABLE | NP_WRITABLE, &c),
                   0);
  ck_assert_int_eq(np_read(c, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert_int_eq(np_write(c, "ping", 4), NP_EAGAIN);
  ck_assert_int_eq(np_stream_error(c), 0);
  ck_assert_uint_eq(await_tok(TOK_C, NP_WRITABLE) & NP_ERR, 0);
  ck_assert_int_eq(np_write(c, "ping", 4), 4);
  ck_assert_int_eq(nfcalls, 1);
  ck_assert_uint_ne(fcalls[0].thread, main_thread);
  check_open(0);
  s = accept_one(l, TOK_S, NP_READABLE | NP_WRITABLE);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  np_close(c);
  /* Again, with a shutdown while connecting. */
  ck_assert_int_eq(connect_on_worker(&o, TOK_C, NP_WRITABLE, &c), 0);
  ck_assert_int_eq(np_shutdown(c), 0);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ESHUTDOWN);
  await_tok(TOK_C, NP_WRITABLE);
  np_close(s);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* np_close while the worker is still opening: the object goes at once,
 * no event comes, and the worker frees its job when its open returns;
 * a handle it opened then is closed, so the server sees its client
 * leave. */
START_TEST(test_pipe_win_worker_close_while_opening) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[4];
  uint64_t deadline = npt_now_ms() + WAIT_MS;
  char buf[4];
  long base;
  int i;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  base = np__seam_allocs();
  gated = 0;
  gate = CreateEventW(NULL, TRUE, FALSE, NULL);
  ck_assert_ptr_nonnull(gate);
  ck_assert_int_eq(connect_on_worker(NULL, TOK_C, NP_WRITABLE, &c), 0);
  /* The worker is inside its open when the stream is closed. */
  while (gated == 0 && npt_now_ms() < deadline)
    npt_sleep_ms(1);
  ck_assert_int_eq(gated, 1);
  np_close(c);
  ck_assert_int_eq(np__pipe_live, NP__DEFAULT_BACKLOG); /* the listener's */
  SetEvent(gate);
  await_allocs(base);
  for (i = 0; i < 3; i++) {
    int n = np_poll_wait(poll_, ev, 4, 20);

    while (n-- > 0)
      ck_assert_uint_ne(ev[n].token, TOK_C);
  }
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  np_listener_close(l);
  free_poll_no_leak();
}
END_TEST

/* A remote open that stalls: the deadline ends the connect with
 * NP_ETIMEDOUT without waiting for the worker, which cleans up after
 * itself when its open returns; np_poll_free meanwhile is not held up
 * either. */
START_TEST(test_pipe_win_remote_deadline_cuts_stalled_open) {
  np_options o;
  np_poll *p2;
  np_stream *c, *c2;
  long base = np__seam_allocs();
  uint64_t start = npt_now_ms();

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_WAIT_ABSENT | NP_OPT_WAIT_BUSY;
  o.timeout_ms = 100;
  fake_host = L"\\\\stalled\\";
  gate = CreateEventW(NULL, TRUE, FALSE, NULL);
  ck_assert_ptr_nonnull(gate);
  ck_assert_int_eq(
      np_connect(poll_, "\\\\stalled\\pipe\\x", &o, TOK_C, NP_WRITABLE, &c),
      0);
  ck_assert_uint_eq(await_tok(TOK_C, NP_ERR) & NP_WRITABLE, NP_WRITABLE);
  ck_assert_uint_ge(npt_now_ms() - start, 100);
  ck_assert_uint_lt(npt_now_ms() - start, WAIT_MS / 2);
  ck_assert_int_eq(np_stream_error(c), NP_ETIMEDOUT);
  np_close(c);
  ck_assert_int_eq(np__pipe_live, 0);
  /* A second one, on a poller of its own, left to np_poll_free. */
  ck_assert_int_eq(np_poll_new(&p2), 0);
  o.timeout_ms = -1;
  ck_assert_int_eq(
      np_connect(p2, "\\\\stalled\\pipe\\y", &o, TOK_C, NP_WRITABLE, &c2), 0);
  start = npt_now_ms();
  np_poll_free(p2);
  ck_assert_uint_lt(npt_now_ms() - start, 1000);
  ck_assert_int_eq(np__pipe_live, 0);
  SetEvent(gate);
  await_allocs(base);
  ck_assert_int_eq(nsleeps, 0);
  free_poll_no_leak();
}
END_TEST

/* ---- the buffer pool --------------------------------------------------- */

/* np_accept_to hands a pipe instance to another poller's port with
 * FileReplaceCompletionInformation (Windows 8.1 and later).  Wine does
 * not implement that class (STATUS_NOT_IMPLEMENTED): there the handle
 * stays on the first port, np__iocp_move says so, and that poller
 * forwards the packets (npipe(7), "Threads").  This test shows which of
 * the two the system gives, and that a real move takes the packets. */
START_TEST(test_pipe_win_move_completion_port) {
  np_poll *a, *b;
  HANDLE server, client;
  OVERLAPPED ov = {0};
  OVERLAPPED_ENTRY e;
  ULONG n = 0;
  DWORD wrote, err;
  char buf[4];
  int moved;
  BOOL ok;

  ck_assert_int_eq(np_poll_new(&a), 0);
  ck_assert_int_eq(np_poll_new(&b), 0);
  server = CreateNamedPipeW(L"\\\\.\\pipe\\npt-move-port",
                            PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                            PIPE_TYPE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 1,
                            4096, 4096, 0, NULL);
  ck_assert_ptr_ne(server, INVALID_HANDLE_VALUE);
  client = CreateFileW(L"\\\\.\\pipe\\npt-move-port",
                       GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       0, NULL);
  ck_assert_ptr_ne(client, INVALID_HANDLE_VALUE);
  ck_assert_int_eq(np__iocp_associate(a, server), 0);
  moved = np__iocp_move(b, server);
  ck_assert_int_ge(moved, 0);
  if (npt_under_wine())
    ck_assert_int_eq(moved, 0);
  else
    ck_assert_int_eq(moved, 1);
  /* A read's packet goes to the port the handle is on now. */
  ok = ReadFile(server, buf, sizeof(buf), NULL, &ov);
  err = GetLastError(); /* before Check's calls change it */
  ck_assert(!ok);
  ck_assert_uint_eq(err, ERROR_IO_PENDING);
  ck_assert(WriteFile(client, "move", 4, &wrote, NULL));
  ck_assert(GetQueuedCompletionStatusEx(np__iocp_port(moved ? b : a), &e, 1,
                                        &n, WAIT_MS, FALSE));
  ck_assert_ptr_eq(e.lpOverlapped, &ov);
  ck_assert_uint_eq(e.dwNumberOfBytesTransferred, 4);
  ck_assert(!GetQueuedCompletionStatusEx(np__iocp_port(moved ? a : b), &e, 1,
                                         &n, 0, FALSE));
  CloseHandle(client);
  CloseHandle(server);
  np_poll_free(a);
  np_poll_free(b);
}
END_TEST

START_TEST(test_pipe_win_bufpool_classes_and_limit) {
  struct np__bufpool pool;
  void *a, *b, *c, *big;

  np__bufpool_init(&pool, 8192);
  ck_assert_uint_eq(np__bufpool_round(1), 4096);
  ck_assert_uint_eq(np__bufpool_round(4096), 4096);
  ck_assert_uint_eq(np__bufpool_round(4097), 8192);
  ck_assert_uint_eq(np__bufpool_round(1 << 20), 1 << 20);
  ck_assert_uint_eq(np__bufpool_round((1 << 20) + 1), (1 << 20) + 1);
  a = np__bufpool_get(&pool, 100);
  b = np__bufpool_get(&pool, 4000);
  c = np__bufpool_get(&pool, 5000);
  big = np__bufpool_get(&pool, 3 << 20);
  ck_assert(a && b && c && big);
  ck_assert_uint_eq(pool.lent, 4096 + 4096 + 8192 + (3 << 20));
  np__bufpool_put(&pool, a, 100);
  np__bufpool_put(&pool, b, 4000);
  ck_assert_uint_eq(pool.cached, 8192);
  /* Over the limit: freed, not cached. */
  np__bufpool_put(&pool, c, 5000);
  np__bufpool_put(&pool, big, 3 << 20);
  ck_assert_uint_eq(pool.cached, 8192);
  ck_assert_uint_eq(pool.lent, 0);
  /* Reuse comes from the cache. */
  ck_assert_ptr_eq(np__bufpool_get(&pool, 1), b);
  np__bufpool_put(&pool, b, 1);
  np__bufpool_put(&pool, NULL, 1);
  np__bufpool_destroy(&pool);
  ck_assert_uint_eq(pool.cached, 0);
}
END_TEST

int main(void) {
  Suite *su = suite_create("pipe_win");
  TCase *tc = npt_tcase(su, "seam");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_win_create_args_every_option);
  tcase_add_test(tc, test_pipe_win_remote_host_path);
  tcase_add_test(tc, test_pipe_win_pipe_connected_byte_mode);
  tcase_add_test(tc, test_pipe_win_pipe_connected_message_mode);
  tcase_add_test(tc, test_pipe_win_no_data_byte_mode);
  tcase_add_test(tc, test_pipe_win_no_data_message_mode);
  tcase_add_test(tc, test_pipe_win_name_taken_maps_to_eaddrinuse);
  tcase_add_test(tc, test_pipe_win_wait_does_not_spin);
  tcase_add_test(tc, test_pipe_win_worker_connects);
  tcase_add_test(tc, test_pipe_win_worker_close_while_opening);
  tcase_add_test(tc, test_pipe_win_remote_deadline_cuts_stalled_open);
  tc = npt_tcase(su, "security");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_win_default_descriptor_reads_back);
  tcase_add_test(tc, test_pipe_win_custom_descriptor_applied);
  tcase_add_test(tc, test_pipe_win_sddl_check_table);
  tcase_add_test(tc, test_pipe_win_second_listener_is_eaddrinuse);
  tcase_add_test(tc, test_pipe_win_reject_remote_reported);
  tcase_add_test(tc, test_pipe_win_server_cannot_impersonate);
  tc = npt_tcase(su, "lifetime");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_win_close_with_read_releases_handle_and_name);
  tcase_add_test(tc, test_pipe_win_server_close_flushes_writes);
  tcase_add_test(tc, test_pipe_win_poll_free_cancels_unread_writes);
  tcase_add_test(tc, test_pipe_win_accept_creates_replacement_first);
  tcase_add_test(tc, test_pipe_win_listener_heals_failed_create);
  tcase_add_test(tc, test_pipe_win_listener_heals_failed_connect);
  tcase_add_test(tc, test_pipe_win_listener_reports_lasting_failure);
  tcase_add_test(tc, test_pipe_win_close_storm);
  tc = npt_tcase(su, "data");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_win_message_sizes);
  tcase_add_test(tc, test_pipe_win_read_buffer_adapts);
  tcase_add_test(tc, test_pipe_win_first_read_waits_for_poll);
  tcase_add_test(tc, test_pipe_win_exact_read_defers_next);
  tcase_add_test(tc, test_pipe_win_deferred_reads_do_not_starve_port);
  tcase_add_test(tc, test_pipe_win_empty_port_not_asked);
  tcase_add_test(tc, test_pipe_win_small_message_rides_probe);
  tcase_add_test(tc, test_pipe_win_bufpool_classes_and_limit);
  tc = npt_tcase(su, "teardown");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_win_poll_free_closes_stuck_handles);
  tcase_add_test(tc, test_pipe_win_abort_ends_at_once);
  tcase_add_test(tc, test_pipe_win_shortage_is_retried);
  tcase_add_test(tc, test_pipe_win_lasting_shortage_fails);
  tcase_add_test(tc, test_pipe_win_close_during_retry_delivers);
  tcase_add_test(tc, test_pipe_win_move_completion_port);
  tcase_add_test(tc, test_pipe_win_custom_descriptor_strips_create_instance);
  tcase_add_test(tc, test_pipe_win_named_owner_keeps_create_instance);
  tcase_add_test(tc, test_pipe_win_client_refuses_foreign_server);
  tcase_add_test(tc, test_pipe_win_impersonate_flag_sets_sqos);
  tcase_add_test(tc, test_pipe_win_client_accepts_plain_win32_server);
  tcase_add_test(tc, test_pipe_win_low_integrity_label_applied);
  return npt_run(su);
}
