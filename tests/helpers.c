#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#endif

#include "helpers.h"

#ifndef _WIN32
static char private_dir[64];
static pid_t private_dir_owner;

/* Removes the private pipe directory and whatever the tests left in it. */
static void remove_private_dir(void) {
  char cmd[128];

  /* Check's forked test children exit through here too. */
  if (private_dir[0] == '\0' || getpid() != private_dir_owner)
    return;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", private_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", private_dir);
}
#endif

void npt_use_private_dir(void) {
#ifndef _WIN32
  /* pipe:NAME lives in $NPIPE_DIR: one fresh directory per test program,
   * so parallel suites never see each other's names. */
  if (private_dir[0] != '\0')
    return;
  snprintf(private_dir, sizeof(private_dir), "/tmp/npt-%lu-XXXXXX",
           (unsigned long)getpid());
  if (mkdtemp(private_dir) == NULL) {
    perror("mkdtemp");
    exit(EXIT_FAILURE);
  }
  setenv("NPIPE_DIR", private_dir, 1);
  private_dir_owner = getpid();
  atexit(remove_private_dir);
#endif
}

int npt_run(Suite *suite) {
  SRunner *sr = srunner_create(suite);
  int failed;

  npt_use_private_dir();

#ifdef _WIN32
  /* msvcrt's text mode would end Check's summary lines in \r\n. */
  _setmode(_fileno(stdout), _O_BINARY);
  _setmode(_fileno(stderr), _O_BINARY);
#endif
  printf("npipe tests: backend=%s fork=%s wine=%s\n", npt_backend(),
         srunner_fork_status(sr) == CK_FORK ? "yes" : "no",
         npt_under_wine() ? "yes" : "no");
  fflush(stdout);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *npt_tcase(Suite *suite, const char *name) {
  TCase *tc = tcase_create(name);

  tcase_set_timeout(tc, NPT_TIMEOUT_S);
  suite_add_tcase(suite, tc);
  return tc;
}

const char *npt_backend(void) {
#ifdef _WIN32
  return "iocp";
#else
  return "epoll";
#endif
}

int npt_under_wine(void) {
#ifdef _WIN32
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");

  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
#else
  return 0;
#endif
}

void npt_pipe_name(char *buf, size_t len, const char *tag) {
  static unsigned counter;
#ifdef _WIN32
  unsigned long pid = GetCurrentProcessId();
#else
  unsigned long pid = (unsigned long)getpid();
#endif

  snprintf(buf, len, "pipe:npt-%lu-%u-%s", pid, counter++, tag);
}

uint32_t npt_wait_token(np_poll *poll, uint64_t token, uint32_t bits,
                        int timeout_ms) {
  uint64_t deadline = npt_now_ms() + (uint64_t)timeout_ms;

  for (;;) {
    np_event evs[16];
    uint64_t now = npt_now_ms();
    int n, i;

    if (now >= deadline)
      return 0;
    n = np_poll_wait(poll, evs, 16, (int)(deadline - now));
    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++)
      if (evs[i].token == token && (evs[i].events & bits) == bits)
        return evs[i].events;
  }
}

int64_t npt_self_pid(void) {
#ifdef _WIN32
  return (int64_t)GetCurrentProcessId();
#else
  return (int64_t)getpid();
#endif
}

uint64_t npt_now_ms(void) {
#ifdef _WIN32
  return GetTickCount64();
#else
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}

void npt_sleep_ms(int ms) {
#ifdef _WIN32
  Sleep((DWORD)ms);
#else
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0)
    ;
#endif
}

struct npt_thread {
  void (*fn)(void *);
  void *arg;
#ifdef _WIN32
  HANDLE handle;
#else
  pthread_t id;
#endif
};

#ifdef _WIN32
static DWORD WINAPI thread_main(LPVOID p) {
  npt_thread *t = p;

  t->fn(t->arg);
  return 0;
}
#else
static void *thread_main(void *p) {
  npt_thread *t = p;

  t->fn(t->arg);
  return NULL;
}
#endif

npt_thread *npt_thread_start(void (*fn)(void *), void *arg) {
  npt_thread *t = calloc(1, sizeof(*t));

  ck_assert_ptr_nonnull(t);
  t->fn = fn;
  t->arg = arg;
#ifdef _WIN32
  t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
  ck_assert_ptr_nonnull(t->handle);
#else
  ck_assert_int_eq(pthread_create(&t->id, NULL, thread_main, t), 0);
#endif
  return t;
}

void npt_thread_join(npt_thread *t) {
#ifdef _WIN32
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
#else
  pthread_join(t->id, NULL);
#endif
  free(t);
}
