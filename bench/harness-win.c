/*
 * The Windows half of the benchmark harness: clock, threads, process
 * memory (GetProcessMemoryInfo) and child runs.  Works under Wine.
 */
#include "config.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <psapi.h>

#include "harness.h"

void bh__os_init(void) {
  /* msvcrt's text mode would end every table row in \r\n. */
  _setmode(_fileno(stdout), _O_BINARY);
  _setmode(_fileno(stderr), _O_BINARY);
}

double bh_now(void) {
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;

  if (freq.QuadPart == 0)
    QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart / (double)freq.QuadPart;
}

void bh_sleep_ms(int ms) { Sleep(ms > 0 ? (DWORD)ms : 0); }

int bh_under_wine(void) {
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");

  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

int bh_ncpu(void) {
  SYSTEM_INFO si;

  GetSystemInfo(&si);
  return si.dwNumberOfProcessors > 0 ? (int)si.dwNumberOfProcessors : 1;
}

void bh_process_memory(int64_t *committed, int64_t *resident) {
  PROCESS_MEMORY_COUNTERS pmc;

  *committed = *resident = -1;
  memset(&pmc, 0, sizeof(pmc));
  pmc.cb = sizeof(pmc);
  if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc)))
    return;
  /* Wine reports PrivateUsage as 0; PagefileUsage is the same commit
   * charge and works on both. */
  *committed = (int64_t)pmc.PagefileUsage;
  *resident = (int64_t)pmc.WorkingSetSize;
}

double bh_cpu_time(void) {
  FILETIME created, exited, kernel, user;
  ULARGE_INTEGER k, u;

  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user))
    return bh_nan();
  k.LowPart = kernel.dwLowDateTime;
  k.HighPart = kernel.dwHighDateTime;
  u.LowPart = user.dwLowDateTime;
  u.HighPart = user.dwHighDateTime;
  /* FILETIME counts 100 ns units. */
  return (double)(k.QuadPart + u.QuadPart) * 1e-7;
}

long bh_raise_nofile(void) { return -1; }

const char *bh_private_dir(void) { return NULL; }

void bh_unique_name(char *buf, size_t len, const char *tag) {
  static int counter;

  snprintf(buf, len, "npb-%lu-%d-%s", (unsigned long)GetCurrentProcessId(),
           ++counter, tag);
}

struct bh_thread {
  HANDLE handle;
  void (*fn)(void *);
  void *arg;
};

static DWORD WINAPI thread_main(LPVOID p) {
  bh_thread *t = p;

  t->fn(t->arg);
  return 0;
}

bh_thread *bh_thread_start(void (*fn)(void *), void *arg) {
  bh_thread *t = malloc(sizeof(*t));

  if (t == NULL) {
    fprintf(stderr, "bench: out of memory\n");
    exit(EXIT_FAILURE);
  }
  t->fn = fn;
  t->arg = arg;
  t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
  if (t->handle == NULL) {
    fprintf(stderr, "bench: CreateThread: error %lu\n", GetLastError());
    exit(EXIT_FAILURE);
  }
  return t;
}

void bh_thread_join(bh_thread *t) {
  WaitForSingleObject(t->handle, INFINITE);
  CloseHandle(t->handle);
  free(t);
}

void bh__lower_priority(void) {
  SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_IDLE);
}

/* Starts this program again with args and its stdout on a pipe; returns
 * the read end, or NULL. */
static HANDLE spawn_self(const char *const *args, PROCESS_INFORMATION *pi) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
  char exe[MAX_PATH], cmd[MAX_PATH + 512];
  STARTUPINFOA si;
  HANDLE rd, wr;
  size_t len;
  int k;

  if (GetModuleFileNameA(NULL, exe, sizeof(exe)) == 0 ||
      !CreatePipe(&rd, &wr, &sa, 0))
    return NULL;
  SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
  snprintf(cmd, sizeof(cmd), "\"%s\"", exe);
  for (k = 0; args[k] != NULL; k++) {
    len = strlen(cmd);
    snprintf(cmd + len, sizeof(cmd) - len, " \"%s\"", args[k]);
  }
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdOutput = wr;
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, pi)) {
    fprintf(stderr, "bench: CreateProcess: error %lu\n", GetLastError());
    CloseHandle(rd);
    rd = NULL;
  }
  CloseHandle(wr);
  return rd;
}

int bh_self_run(const char *const *args, double *values, int n) {
  static char out[4096];
  PROCESS_INFORMATION pi;
  DWORD got, total = 0;
  HANDLE rd = spawn_self(args, &pi);

  if (rd == NULL)
    return -1;
  while (total + 1 < sizeof(out) &&
         ReadFile(rd, out + total, (DWORD)(sizeof(out) - 1 - total), &got,
                  NULL) &&
         got > 0)
    total += got;
  out[total] = '\0';
  CloseHandle(rd);
  WaitForSingleObject(pi.hProcess, INFINITE);
  CloseHandle(pi.hProcess);
  CloseHandle(pi.hThread);
  return bh__child_parse(out, values, n);
}
