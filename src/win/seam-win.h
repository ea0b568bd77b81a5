/*
 * The Windows backend's test seam (see common/seam.h).  The seam build
 * force-includes this header ahead of every library file: it includes
 * config.h and every system header that declares a wrapped function
 * (their include guards make the files' own includes no-ops), then, with
 * NP_SEAM defined, redirects each call to its np__seam_ wrapper
 * (seam-win.c).  Pure computations (MultiByteToWideChar, GetAce, ...)
 * and calls that cannot fail are left alone, but for Sleep: it is
 * recorded (never failed), so that tests can tell that nothing sleeps.
 */
#ifndef NP_WIN_SEAM_WIN_H
#define NP_WIN_SEAM_WIN_H

#include "config.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>
#include <sddl.h>
#include <aclapi.h>
#include <stdlib.h>

#if defined(NP_SEAM)
#define NP_SEAM_REDIRECT 1 /* common/seam.h redirects the malloc family */
#endif
#include "common/seam.h"

#define NP__U1(a) (uintptr_t)(a)
#define NP__U2(a, b) NP__U1(a), (uintptr_t)(b)
#define NP__U3(a, b, c) NP__U2(a, b), (uintptr_t)(c)
#define NP__U4(a, b, c, d) NP__U3(a, b, c), (uintptr_t)(d)
#define NP__U5(a, b, c, d, e) NP__U4(a, b, c, d), (uintptr_t)(e)
#define NP__U6(a, b, c, d, e, f) NP__U5(a, b, c, d, e), (uintptr_t)(f)
#define NP__U7(a, b, c, d, e, f, g) NP__U6(a, b, c, d, e, f), (uintptr_t)(g)
#define NP__U8(a, b, c, d, e, f, g, h)                                        \
  NP__U7(a, b, c, d, e, f, g), (uintptr_t)(h)
#define NP__U9(a, b, c, d, e, f, g, h, i)                                     \
  NP__U8(a, b, c, d, e, f, g, h), (uintptr_t)(i)
#define NP__U10(a, b, c, d, e, f, g, h, i, j)                                 \
  NP__U9(a, b, c, d, e, f, g, h, i), (uintptr_t)(j)

#define NP__ANY NP__SEAM_ANY
#define NP__MEM (NP__SEAM_ANY | NP__SEAM_NOMEM)
#define NP__HND (NP__MEM | NP__SEAM_NOFD)
#define NP__H NP__SEAM_HANDLE

/* X(ret, name, fail, cls, err, kind, params, args, recorded): kind says
 * how the error is reported: W32 (SetLastError), WSA (WSASetLastError)
 * or NT (the NTSTATUS returned). */
#define NP__SEAM_WIN_FNS(X)                                                   \
  X(HANDLE, CreateNamedPipeW, INVALID_HANDLE_VALUE, NP__HND,                  \
    ERROR_NO_SYSTEM_RESOURCES, W32,                                           \
    (LPCWSTR n, DWORD o, DWORD m, DWORD x, DWORD os, DWORD is, DWORD t,       \
     LPSECURITY_ATTRIBUTES sa),                                               \
    (n, o, m, x, os, is, t, sa), NP__U8(n, o, m, x, os, is, t, sa))           \
  X(HANDLE, CreateFileW, INVALID_HANDLE_VALUE, NP__HND,                       \
    ERROR_NO_SYSTEM_RESOURCES, W32,                                           \
    (LPCWSTR n, DWORD a, DWORD sh, LPSECURITY_ATTRIBUTES sa, DWORD d,         \
     DWORD f, HANDLE tf),                                                     \
    (n, a, sh, sa, d, f, tf), NP__U7(n, a, sh, sa, d, f, tf))                 \
  X(BOOL, ConnectNamedPipe, FALSE, NP__MEM | NP__H, ERROR_NOT_ENOUGH_QUOTA,   \
    W32, (HANDLE h, LPOVERLAPPED ov), (h, ov), NP__U2(h, ov))                 \
  X(BOOL, ReadFile, FALSE, NP__MEM | NP__H, ERROR_NOT_ENOUGH_QUOTA, W32,      \
    (HANDLE h, LPVOID b, DWORD n, LPDWORD got, LPOVERLAPPED ov),              \
    (h, b, n, got, ov), NP__U5(h, b, n, got, ov))                             \
  X(BOOL, WriteFile, FALSE, NP__MEM | NP__H, ERROR_NOT_ENOUGH_QUOTA, W32,     \
    (HANDLE h, LPCVOID b, DWORD n, LPDWORD put, LPOVERLAPPED ov),             \
    (h, b, n, put, ov), NP__U5(h, b, n, put, ov))                             \
  X(BOOL, CancelIoEx, FALSE, NP__ANY | NP__H, ERROR_NOT_FOUND, W32,           \
    (HANDLE h, LPOVERLAPPED ov), (h, ov), NP__U2(h, ov))                      \
  X(HANDLE, CreateIoCompletionPort, NULL, NP__HND | NP__H,                    \
    ERROR_NOT_ENOUGH_MEMORY, W32,                                             \
    (HANDLE h, HANDLE port, ULONG_PTR key, DWORD threads),                    \
    (h, port, key, threads), NP__U4(h, port, key, threads))                   \
  X(BOOL, GetQueuedCompletionStatusEx, FALSE, NP__ANY | NP__H, WAIT_TIMEOUT,  \
    W32,                                                                      \
    (HANDLE port, LPOVERLAPPED_ENTRY e, ULONG max, PULONG n, DWORD ms,        \
     BOOL alertable),                                                         \
    (port, e, max, n, ms, alertable), NP__U6(port, e, max, n, ms, alertable)) \
  X(BOOL, PostQueuedCompletionStatus, FALSE, NP__MEM | NP__H,                 \
    ERROR_NO_SYSTEM_RESOURCES, W32,                                           \
    (HANDLE port, DWORD n, ULONG_PTR key, LPOVERLAPPED ov),                   \
    (port, n, key, ov), NP__U4(port, n, key, ov))                             \
  X(BOOL, SetFileCompletionNotificationModes, FALSE, NP__ANY | NP__H,         \
    ERROR_INVALID_PARAMETER, W32, (HANDLE h, UCHAR f), (h, f), NP__U2(h, f))  \
  X(BOOL, WaitNamedPipeW, FALSE, NP__MEM, ERROR_SEM_TIMEOUT, W32,             \
    (LPCWSTR n, DWORD ms), (n, ms), NP__U2(n, ms))                            \
  X(BOOL, SetNamedPipeHandleState, FALSE, NP__ANY | NP__H,                    \
    ERROR_INVALID_PARAMETER, W32,                                             \
    (HANDLE h, LPDWORD m, LPDWORD c, LPDWORD t), (h, m, c, t),                \
    NP__U4(h, m, c, t))                                                       \
  X(BOOL, PeekNamedPipe, FALSE, NP__MEM | NP__H, ERROR_NO_SYSTEM_RESOURCES,   \
    W32,                                                                      \
    (HANDLE h, LPVOID b, DWORD n, LPDWORD got, LPDWORD avail, LPDWORD left),  \
    (h, b, n, got, avail, left), NP__U6(h, b, n, got, avail, left))           \
  X(BOOL, GetNamedPipeClientProcessId, FALSE, NP__ANY | NP__H,                \
    ERROR_INVALID_HANDLE, W32, (HANDLE h, PULONG pid), (h, pid),              \
    NP__U2(h, pid))                                                           \
  X(BOOL, GetNamedPipeServerProcessId, FALSE, NP__ANY | NP__H,                \
    ERROR_INVALID_HANDLE, W32, (HANDLE h, PULONG pid), (h, pid),              \
    NP__U2(h, pid))                                                           \
  X(BOOL, SetHandleInformation, FALSE, NP__ANY | NP__H,                       \
    ERROR_INVALID_PARAMETER, W32, (HANDLE h, DWORD m, DWORD f), (h, m, f),    \
    NP__U3(h, m, f))                                                          \
  X(BOOL, OpenProcessToken, FALSE, NP__HND, ERROR_NOT_ENOUGH_MEMORY, W32,     \
    (HANDLE p, DWORD a, PHANDLE t), (p, a, t), NP__U3(p, a, t))               \
  X(BOOL, GetTokenInformation, FALSE, NP__MEM | NP__H,                        \
    ERROR_NOT_ENOUGH_MEMORY, W32,                                             \
    (HANDLE t, TOKEN_INFORMATION_CLASS c, LPVOID b, DWORD n, PDWORD got),     \
    (t, c, b, n, got), NP__U5(t, c, b, n, got))                               \
  X(SOCKET, WSASocketW, INVALID_SOCKET, NP__HND, WSAEMFILE, WSA,              \
    (int af, int type, int proto, LPWSAPROTOCOL_INFOW info, GROUP g,          \
     DWORD f),                                                                \
    (af, type, proto, info, g, f), NP__U6(af, type, proto, info, g, f))       \
  X(int, WSAIoctl, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,            \
    (SOCKET s, DWORD code, LPVOID in, DWORD inn, LPVOID out, DWORD outn,      \
     LPDWORD got, LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE cr), \
    (s, code, in, inn, out, outn, got, ov, cr),                               \
    NP__U9(s, code, in, inn, out, outn, got, ov, cr))                         \
  X(int, bind, SOCKET_ERROR, NP__MEM | NP__H, WSAEADDRINUSE, WSA,             \
    (SOCKET s, const struct sockaddr *a, int n), (s, a, n), NP__U3(s, a, n))  \
  X(int, listen, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,              \
    (SOCKET s, int n), (s, n), NP__U2(s, n))                                  \
  X(SOCKET, accept, INVALID_SOCKET, NP__HND | NP__H, WSAEMFILE, WSA,          \
    (SOCKET s, struct sockaddr * a, int *n), (s, a, n), NP__U3(s, a, n))      \
  X(int, connect, SOCKET_ERROR, NP__MEM | NP__H, WSAECONNREFUSED, WSA,        \
    (SOCKET s, const struct sockaddr *a, int n), (s, a, n), NP__U3(s, a, n))  \
  X(int, getsockopt, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,          \
    (SOCKET s, int l, int o, char *v, int *n), (s, l, o, v, n),               \
    NP__U5(s, l, o, v, n))                                                    \
  X(int, setsockopt, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,          \
    (SOCKET s, int l, int o, const char *v, int n), (s, l, o, v, n),          \
    NP__U5(s, l, o, v, n))                                                    \
  X(int, getsockname, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,         \
    (SOCKET s, struct sockaddr * a, int *n), (s, a, n), NP__U3(s, a, n))      \
  X(int, ioctlsocket, SOCKET_ERROR, NP__ANY | NP__H, WSAENOBUFS, WSA,         \
    (SOCKET s, long c, u_long *v), (s, c, v), NP__U3(s, c, v))                \
  X(int, recv, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,                \
    (SOCKET s, char *b, int n, int f), (s, b, n, f), NP__U4(s, b, n, f))      \
  X(int, send, SOCKET_ERROR, NP__MEM | NP__H, WSAENOBUFS, WSA,                \
    (SOCKET s, const char *b, int n, int f), (s, b, n, f),                    \
    NP__U4(s, b, n, f))                                                       \
  X(int, shutdown, SOCKET_ERROR, NP__ANY | NP__H, WSAENOBUFS, WSA,            \
    (SOCKET s, int how), (s, how), NP__U2(s, how))

#define NP__SEAM_DECLARE(ret, name, fail, cls, err, kind, params, args, rec)  \
  ret WINAPI np__seam_##name params;
NP__SEAM_WIN_FNS(NP__SEAM_DECLARE)
#undef NP__SEAM_DECLARE

/* The others, written out in seam-win.c. */
BOOL WINAPI np__seam_CloseHandle(HANDLE h);
void WINAPI np__seam_Sleep(DWORD ms);
int WINAPI np__seam_closesocket(SOCKET s);
int WINAPI np__seam_WSAStartup(WORD v, LPWSADATA data);
int WINAPI np__seam_getaddrinfo(const char *host, const char *port,
                                const struct addrinfo *hints,
                                struct addrinfo **out);
void WINAPI np__seam_freeaddrinfo(struct addrinfo *ai);
int WINAPI np__seam_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                                char *host, DWORD hostlen, char *serv,
                                DWORD servlen, int flags);
BOOL WINAPI np__seam_ConvertStringSecurityDescriptorToSecurityDescriptorW(
    LPCWSTR s, DWORD rev, PSECURITY_DESCRIPTOR *sd, PULONG n);
BOOL WINAPI np__seam_ConvertSidToStringSidW(PSID sid, LPWSTR *s);
HLOCAL WINAPI np__seam_LocalFree(HLOCAL p);
DWORD WINAPI np__seam_GetSecurityInfo(HANDLE h, SE_OBJECT_TYPE type,
                                      SECURITY_INFORMATION what, PSID *owner,
                                      PSID *group, PACL *dacl, PACL *sacl,
                                      PSECURITY_DESCRIPTOR *sd);
NTSTATUS NTAPI np__seam_NtDeviceIoControlFile(HANDLE h, HANDLE ev,
                                              PIO_APC_ROUTINE apc, PVOID ctx,
                                              PIO_STATUS_BLOCK io, ULONG code,
                                              PVOID in, ULONG inn, PVOID out,
                                              ULONG outn);

#if defined(NP_SEAM)
#define CreateNamedPipeW(...) NP__SEAM_CALL(CreateNamedPipeW, __VA_ARGS__)
#define CreateFileW(...) NP__SEAM_CALL(CreateFileW, __VA_ARGS__)
#define ConnectNamedPipe(...) NP__SEAM_CALL(ConnectNamedPipe, __VA_ARGS__)
#define ReadFile(...) NP__SEAM_CALL(ReadFile, __VA_ARGS__)
#define WriteFile(...) NP__SEAM_CALL(WriteFile, __VA_ARGS__)
#define CancelIoEx(...) NP__SEAM_CALL(CancelIoEx, __VA_ARGS__)
#define CreateIoCompletionPort(...)                                           \
  NP__SEAM_CALL(CreateIoCompletionPort, __VA_ARGS__)
#define GetQueuedCompletionStatusEx(...)                                      \
  NP__SEAM_CALL(GetQueuedCompletionStatusEx, __VA_ARGS__)
#define PostQueuedCompletionStatus(...)                                       \
  NP__SEAM_CALL(PostQueuedCompletionStatus, __VA_ARGS__)
#define SetFileCompletionNotificationModes(...)                               \
  NP__SEAM_CALL(SetFileCompletionNotificationModes, __VA_ARGS__)
#define WaitNamedPipeW(...) NP__SEAM_CALL(WaitNamedPipeW, __VA_ARGS__)
#define SetNamedPipeHandleState(...)                                          \
  NP__SEAM_CALL(SetNamedPipeHandleState, __VA_ARGS__)
#define PeekNamedPipe(...) NP__SEAM_CALL(PeekNamedPipe, __VA_ARGS__)
#define GetNamedPipeClientProcessId(...)                                      \
  NP__SEAM_CALL(GetNamedPipeClientProcessId, __VA_ARGS__)
#define GetNamedPipeServerProcessId(...)                                      \
  NP__SEAM_CALL(GetNamedPipeServerProcessId, __VA_ARGS__)
#define SetHandleInformation(...)                                             \
  NP__SEAM_CALL(SetHandleInformation, __VA_ARGS__)
#define OpenProcessToken(...) NP__SEAM_CALL(OpenProcessToken, __VA_ARGS__)
#define GetTokenInformation(...)                                              \
  NP__SEAM_CALL(GetTokenInformation, __VA_ARGS__)
#define WSASocketW(...) NP__SEAM_CALL(WSASocketW, __VA_ARGS__)
#define WSAIoctl(...) NP__SEAM_CALL(WSAIoctl, __VA_ARGS__)
#define bind(...) NP__SEAM_CALL(bind, __VA_ARGS__)
#define listen(...) NP__SEAM_CALL(listen, __VA_ARGS__)
#define accept(...) NP__SEAM_CALL(accept, __VA_ARGS__)
#define connect(...) NP__SEAM_CALL(connect, __VA_ARGS__)
#define getsockopt(...) NP__SEAM_CALL(getsockopt, __VA_ARGS__)
#define setsockopt(...) NP__SEAM_CALL(setsockopt, __VA_ARGS__)
#define getsockname(...) NP__SEAM_CALL(getsockname, __VA_ARGS__)
#define ioctlsocket(...) NP__SEAM_CALL(ioctlsocket, __VA_ARGS__)
#define recv(...) NP__SEAM_CALL(recv, __VA_ARGS__)
#define send(...) NP__SEAM_CALL(send, __VA_ARGS__)
#define shutdown(...) NP__SEAM_CALL(shutdown, __VA_ARGS__)
#define CloseHandle(...) NP__SEAM_CALL(CloseHandle, __VA_ARGS__)
#define Sleep(...) NP__SEAM_CALL(Sleep, __VA_ARGS__)
#define closesocket(...) NP__SEAM_CALL(closesocket, __VA_ARGS__)
#define WSAStartup(...) NP__SEAM_CALL(WSAStartup, __VA_ARGS__)
#define getaddrinfo(...) NP__SEAM_CALL(getaddrinfo, __VA_ARGS__)
#define freeaddrinfo(...) NP__SEAM_CALL(freeaddrinfo, __VA_ARGS__)
#define getnameinfo(...) NP__SEAM_CALL(getnameinfo, __VA_ARGS__)
#define ConvertStringSecurityDescriptorToSecurityDescriptorW(...)             \
  NP__SEAM_CALL(ConvertStringSecurityDescriptorToSecurityDescriptorW,         \
                __VA_ARGS__)
#define ConvertSidToStringSidW(...)                                           \
  NP__SEAM_CALL(ConvertSidToStringSidW, __VA_ARGS__)
#define LocalFree(...) NP__SEAM_CALL(LocalFree, __VA_ARGS__)
#define GetSecurityInfo(...) NP__SEAM_CALL(GetSecurityInfo, __VA_ARGS__)
#define NtDeviceIoControlFile(...)                                            \
  NP__SEAM_CALL(NtDeviceIoControlFile, __VA_ARGS__)
#endif

#endif /* NP_WIN_SEAM_WIN_H */
