/*
 * The tools' platform layer on Windows: blocking ReadFile / WriteFile on
 * handles that may be a console, a file or an anonymous pipe (none of
 * which can join the library's completion port), threads, child processes
 * with redirected standard handles, and console control events that wake
 * the poller.
 */
#include "config.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "tools.h"

#define CHILD_PIPE_BUF (64 * 1024)

const int tl_sys_windows = 1;

/* The console handler runs on a thread of its own: the lock keeps the
 * poller from being freed under a wake-up. */
static SRWLOCK signal_lock = SRWLOCK_INIT;
static np_poll *signal_poll;
static volatile LONG caught;

static int from_win32(DWORD e) {
  switch (e) {
  case ERROR_BROKEN_PIPE:
  case ERROR_NO_DATA:
  case ERROR_PIPE_NOT_CONNECTED:
    return NP_EPIPE;
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    return NP_ENOENT;
  case ERROR_ACCESS_DENIED:
  case ERROR_SHARING_VIOLATION:
    return NP_EACCES;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return NP_ENOMEM;
  case ERROR_TOO_MANY_OPEN_FILES:
    return NP_EMFILE;
  case ERROR_INVALID_HANDLE:
    return NP_EBADF;
  case ERROR_OPERATION_ABORTED:
    return NP_ECANCELED;
  case ERROR_DISK_FULL:
  case ERROR_HANDLE_DISK_FULL:
    return NP_ENOSPC;
  default:
    return NP_EIO;
  }
}

/* Prints "what: <the system's message>" for a Win32 error. */
static void report_win32(const char *what, DWORD e) {
  char msg[256];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                               FORMAT_MESSAGE_IGNORE_INSERTS,
                           NULL, e, 0, msg, sizeof(msg), NULL);

  while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n' ||
                   msg[n - 1] == '.' || msg[n - 1] == ' '))
    n--;
  if (n == 0)
    tl_error("%s: error %lu", what, (unsigned long)e);
  else
    tl_error("%s: %.*s", what, (int)n, msg);
}

void tl_sys_init(void) {
  /* Messages end in \n, as on POSIX, whatever reads them. */
  _setmode(_fileno(stdout), _O_BINARY);
  _setmode(_fileno(stderr), _O_BINARY);
  setvbuf(stderr, NULL, _IONBF, 0);
}

/* Process exit ends the threads still blocked in ReadFile; none holds
 * anything that must be released first. */
void tl_sys_quit(void) {}

static BOOL WINAPI on_console_event(DWORD type) {
  (void)type;
  InterlockedExchange(&caught, 2);
  AcquireSRWLockShared(&signal_lock);
  if (signal_poll != NULL)
    np_poll_wake(signal_poll);
  ReleaseSRWLockShared(&signal_lock);
  return TRUE;
}

void tl_sys_catch_signals(np_poll *poll) {
  AcquireSRWLockExclusive(&signal_lock);
  signal_poll = poll;
  ReleaseSRWLockExclusive(&signal_lock);
  if (poll != NULL)
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

int tl_sys_signalled(void) {
  return (int)InterlockedCompareExchange(&caught, 0, 0);
}

uint64_t tl_sys_now_ms(void) { return GetTickCount64(); }

int tl_sys_stderr_is_tty(void) {
  DWORD mode;

  return GetConsoleMode(GetStdHandle(STD_ERROR_HANDLE), &mode) != 0;
}

static tl_handle std_handle(DWORD which) {
  HANDLE h = GetStdHandle(which);

  return h == NULL || h == INVALID_HANDLE_VALUE ? TL_NO_HANDLE
                                                : (tl_handle)(intptr_t)h;
}

tl_handle tl_sys_stdin(void) { return std_handle(STD_INPUT_HANDLE); }

tl_handle tl_sys_stdout(void) { return std_handle(STD_OUTPUT_HANDLE); }

int tl_sys_open_file(const char *path, tl_handle *out, uint64_t *size) {
  HANDLE h =
      CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                  OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  LARGE_INTEGER li;

  if (h == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();

    report_win32(path, e);
    return from_win32(e);
  }
  *size = GetFileType(h) == FILE_TYPE_DISK && GetFileSizeEx(h, &li)
              ? (uint64_t)li.QuadPart
              : 0;
  *out = (tl_handle)(intptr_t)h;
  return 0;
}

ptrdiff_t tl_sys_read(tl_handle h, void *buf, size_t len) {
  DWORD n = 0, e;

  if (len > 0x40000000u)
    len = 0x40000000u;
  if (ReadFile((HANDLE)h, buf, (DWORD)len, &n, NULL))
    return (ptrdiff_t)n; /* 0: end of file, or Ctrl-Z on a console */
  e = GetLastError();
  /* A pipe whose writer closed is the end of input. */
  if (e == ERROR_BROKEN_PIPE || e == ERROR_HANDLE_EOF ||
      e == ERROR_PIPE_NOT_CONNECTED)
    return 0;
  return from_win32(e);
}

int tl_sys_write(tl_handle h, const void *buf, size_t len) {
  const char *p = buf;

  while (len > 0) {
    DWORD chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len, n = 0;

    if (!WriteFile((HANDLE)h, p, chunk, &n, NULL))
      return from_win32(GetLastError());
    p += n;
    len -= n;
  }
  return 0;
}

void tl_sys_close(tl_handle h) { CloseHandle((HANDLE)h); }

/* Restricts what the child inherits to its three handles, so that it
 * cannot keep another client's pipe open.  Returns NULL when the system
 * lacks the attribute; the child then inherits every inheritable handle,
 * which are only these, since the tools mark nothing else inheritable. */
static LPPROC_THREAD_ATTRIBUTE_LIST handle_list(HANDLE *handles, int n) {
  LPPROC_THREAD_ATTRIBUTE_LIST list;
  SIZE_T size = 0;

  InitializeProcThreadAttributeList(NULL, 1, 0, &size);
  list = malloc(size);
  if (list == NULL)
    return NULL;
  if (!InitializeProcThreadAttributeList(list, 1, 0, &size)) {
    free(list);
    return NULL;
  }
  if (!UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                 handles, (SIZE_T)n * sizeof(HANDLE), NULL,
                                 NULL)) {
    DeleteProcThreadAttributeList(list);
    free(list);
    return NULL;
  }
  return list;
}

/* One pipe for the child: child_end inheritable, ours not. */
static int child_pipe(HANDLE *child_end, HANDLE *our_end, int child_reads) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
  HANDLE r, w;

  if (!CreatePipe(&r, &w, &sa, CHILD_PIPE_BUF))
    return 0;
  *child_end = child_reads ? r : w;
  *our_end = child_reads ? w : r;
  SetHandleInformation(*our_end, HANDLE_FLAG_INHERIT, 0);
  return 1;
}

static BOOL create(char *cmd, HANDLE in, HANDLE out, HANDLE err,
                   PROCESS_INFORMATION *pi) {
  HANDLE handles[3] = {in, out, err};
  STARTUPINFOEXA si;
  LPPROC_THREAD_ATTRIBUTE_LIST list;
  BOOL ok;

  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = sizeof(si);
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = in;
  si.StartupInfo.hStdOutput = out;
  si.StartupInfo.hStdError = err;
  list = handle_list(handles, err != NULL ? 3 : 2);
  si.lpAttributeList = list;
  ok = CreateProcessA(NULL, cmd, NULL, NULL, TRUE,
                      list != NULL ? EXTENDED_STARTUPINFO_PRESENT : 0, NULL,
                      NULL, &si.StartupInfo, pi);
  if (list != NULL) {
    DeleteProcThreadAttributeList(list);
    free(list);
  }
  return ok;
}

int tl_sys_spawn(const char *command, tl_handle *to_child,
                 tl_handle *from_child, tl_proc *proc) {
  HANDLE child_in = NULL, in_w = NULL, child_out = NULL, out_r = NULL;
  HANDLE err_h = NULL;
  PROCESS_INFORMATION pi;
  char *cmd = _strdup(command); /* CreateProcess may write into it */
  DWORD e = 0;

  if (cmd == NULL || !child_pipe(&child_in, &in_w, 1) ||
      !child_pipe(&child_out, &out_r, 0))
    e = cmd == NULL ? ERROR_NOT_ENOUGH_MEMORY : GetLastError();
  /* The child shares our standard error, through an inheritable copy. */
  if (e == 0 &&
      !DuplicateHandle(GetCurrentProcess(), GetStdHandle(STD_ERROR_HANDLE),
                       GetCurrentProcess(), &err_h, 0, TRUE,
                       DUPLICATE_SAME_ACCESS))
    err_h = NULL;
  if (e == 0 && !create(cmd, child_in, child_out, err_h, &pi))
    e = GetLastError();
  if (child_in != NULL)
    CloseHandle(child_in);
  if (child_out != NULL)
    CloseHandle(child_out);
  if (err_h != NULL)
    CloseHandle(err_h);
  free(cmd);
  if (e != 0) {
    char what[300];

    snprintf(what, sizeof(what), "cannot run '%.256s'", command);
    report_win32(what, e);
    if (in_w != NULL)
      CloseHandle(in_w);
    if (out_r != NULL)
      CloseHandle(out_r);
    return from_win32(e);
  }
  CloseHandle(pi.hThread);
  *to_child = (tl_handle)(intptr_t)in_w;
  *from_child = (tl_handle)(intptr_t)out_r;
  *proc = (tl_proc)(intptr_t)pi.hProcess;
  return 0;
}

void tl_sys_proc_wait(tl_proc proc) {
  WaitForSingleObject((HANDLE)proc, INFINITE);
}

void tl_sys_proc_kill(tl_proc proc) { TerminateProcess((HANDLE)proc, 1); }

void tl_sys_proc_release(tl_proc proc) { CloseHandle((HANDLE)proc); }

struct tl_lock {
  SRWLOCK lock;
  CONDITION_VARIABLE cond;
};

tl_lock *tl_lock_new(void) {
  tl_lock *l = malloc(sizeof(*l));

  if (l == NULL)
    return NULL;
  InitializeSRWLock(&l->lock);
  InitializeConditionVariable(&l->cond);
  return l;
}

void tl_lock_free(tl_lock *l) { free(l); }

void tl_lock_take(tl_lock *l) { AcquireSRWLockExclusive(&l->lock); }

void tl_lock_give(tl_lock *l) { ReleaseSRWLockExclusive(&l->lock); }

void tl_lock_wait(tl_lock *l) {
  SleepConditionVariableSRW(&l->cond, &l->lock, INFINITE, 0);
}

void tl_lock_broadcast(tl_lock *l) { WakeAllConditionVariable(&l->cond); }

struct thread_start {
  void (*fn)(void *);
  void *arg;
};

static DWORD WINAPI thread_main(LPVOID p) {
  struct thread_start ts = *(struct thread_start *)p;

  free(p);
  ts.fn(ts.arg);
  return 0;
}

int tl_thread_start(void (*fn)(void *), void *arg) {
  struct thread_start *ts = malloc(sizeof(*ts));
  HANDLE h;

  if (ts == NULL)
    return NP_ENOMEM;
  ts->fn = fn;
  ts->arg = arg;
  h = CreateThread(NULL, 256 * 1024, thread_main, ts,
                   STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
  if (h == NULL) {
    DWORD e = GetLastError();

    free(ts);
    return from_win32(e);
  }
  CloseHandle(h); /* detached: the thread runs on */
  return 0;
}
