/**
 * The few libc calls capture needs, bound once through koffi. Every wrapper returns the raw
 * result; callers check it and turn errno into a CaptureError with `syscallError`.
 */
import koffi from 'koffi';
import { endianness } from 'node:os';
import { CaptureError } from '../errors.js';

const libc = koffi.load('libc.so.6');

export const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
export const close = libc.func('int close(int fd)') as (fd: number) => number;
// Buffers are passed as pointers to their bytes; the kernel copies what it needs during the call.
export const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (
  fd: number,
  level: number,
  name: number,
  val: Buffer,
  len: number,
) => number;
export const getsockopt = libc.func('int getsockopt(int fd, int level, int name, _Inout_ void *val, _Inout_ void *len)') as (
  fd: number,
  level: number,
  name: number,
  val: Buffer,
  len: Buffer,
) => number;
export const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;
export const sendto = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)') as (
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Buffer | null,
  alen: number,
) => number | bigint;
export const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)') as (
  addr: null,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: bigint,
) => bigint | null;
export const munmap = libc.func('int munmap(void *addr, size_t len)') as (addr: bigint, len: number) => number;
const ioctlFn = libc.func('int ioctl(int fd, unsigned long request, ...)') as (fd: number, request: number, type: string, arg: Buffer) => number;
/** ioctl(2) with a pointer argument (a struct the kernel reads or fills). */
export function ioctlPtr(fd: number, request: number, arg: Buffer): number {
  return ioctlFn(fd, request, '_Inout_ void *', arg);
}
export const sysconf = libc.func('long sysconf(int name)') as (name: number) => number | bigint;
const strerrorFn = libc.func('const char *strerror(int errnum)') as (e: number) => string;

type PollCallback = (err: unknown, res: number) => void;
/** poll(2) on a koffi worker thread, so the event loop keeps running while we wait. */
const pollFn = libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)') as unknown as {
  async(fds: Buffer, nfds: number, timeout: number, cb: PollCallback): void;
};

/** poll(2) on the calling thread: for a worker thread that owns its ring and has nothing else to wait on. */
export function pollSync(fds: Buffer, nfds: number, timeoutMs: number): number {
  return (pollFn as unknown as (fds: Buffer, nfds: number, timeout: number) => number)(fds, nfds, timeoutMs);
}

export function pollAsync(fds: Buffer, nfds: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    pollFn.async(fds, nfds, timeoutMs, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export const MAP_FAILED = 0xffffffffffffffffn;
export const LITTLE_ENDIAN = endianness() === 'LE';

export const AF_INET = 2;
export const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const EPERM = 1;
export const EINTR = 4;
export const EACCES = 13;
export const ENODEV = 19;

export function errno(): number {
  return koffi.errno();
}

export function strerror(e: number): string {
  return strerrorFn(e);
}

export function pageSize(): number {
  const n = Number(sysconf(30 /* _SC_PAGESIZE */));
  return n > 0 ? n : 4096;
}

/** Turn the current errno into a CaptureError naming the syscall; call right after the failure. */
export function syscallError(what: string, e = errno()): CaptureError {
  const hint = e === EPERM || e === EACCES ? ' (needs root or CAP_NET_RAW)' : '';
  return new CaptureError(`${what} failed: ${strerror(e)} (errno ${e})${hint}`, e);
}

/** Address of a Buffer's bytes, for structs that hold a pointer (sock_fprog). */
export function addressOf(b: Buffer): bigint {
  return koffi.address(b);
}

/** An ArrayBuffer over native memory, without copying (the ring). */
export function view(ptr: bigint, len: number): ArrayBuffer {
  return koffi.view(ptr, len);
}
