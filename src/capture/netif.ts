/**
 * Interface facts (index, flags, MTU) through SIOCGIF* ioctls on a `struct ifreq`.
 */
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { CaptureError } from '../errors.js';
import * as libc from './libc.js';

type IoctlAddon = (fd: number, request: number, data: Buffer) => number;
// The `ioctl` package is the well-kept tool for this, but its addon cannot load in worker threads
// (--workers): there the same call goes through koffi. The addon asserts on its argument count, so
// the only call site is ioctlChecked, which always passes exactly three checked arguments.
const ioctlAddon: IoctlAddon | null = isMainThread ? (createRequire(import.meta.url)('ioctl') as IoctlAddon) : null;

const SIOCGIFFLAGS = 0x8913;
const SIOCGIFINDEX = 0x8933;
const SIOCGIFMTU = 0x8921;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

export interface InterfaceInfo {
  index: number;
  up: boolean;
  running: boolean;
  mtu: number;
}

/** Throws CaptureError unless `name` can be a Linux interface name (1..15 bytes, no '/' or space). */
export function validateInterfaceName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > IFNAMSIZ - 1 || /[\s/:\0]/.test(name) || name === '.' || name === '..') {
    throw new CaptureError(`invalid interface name ${JSON.stringify(name)}: need 1..15 characters without '/', ':' or whitespace`);
  }
}

function ioctlChecked(fd: number, request: number, req: Buffer): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new TypeError(`ioctl: bad fd ${fd}`);
  if (!Number.isInteger(request) || request < 0 || request > 0xffffffff) throw new TypeError(`ioctl: bad request ${request}`);
  if (!Buffer.isBuffer(req) || req.length < IFREQ_SIZE) throw new TypeError('ioctl: ifreq must be a Buffer of at least 40 bytes');
  if (ioctlAddon) ioctlAddon(fd, request, req);
  else if (libc.ioctlPtr(fd, request, req) < 0) throw Object.assign(new Error('ioctl failed'), { errno: libc.errno() });
}

function ifreq(name: string): Buffer {
  const b = Buffer.alloc(IFREQ_SIZE);
  b.write(name, 0, IFNAMSIZ - 1, 'utf8');
  return b;
}

/**
 * Index, flags and MTU of `name`. Uses `fd` if given (any socket), else a throwaway AF_INET
 * datagram socket. Throws CaptureError if the interface does not exist.
 */
export function interfaceInfo(name: string, fd?: number): InterfaceInfo {
  validateInterfaceName(name);
  let own = -1;
  if (fd === undefined) {
    own = libc.socket(libc.AF_INET, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
    if (own < 0) throw libc.syscallError('socket(AF_INET, SOCK_DGRAM)');
  }
  const sock = fd ?? own;
  try {
    const req = ifreq(name);
    const call = (request: number, what: string): void => {
      try {
        ioctlChecked(sock, request, req);
      } catch (e) {
        const errno = (e as { errno?: unknown }).errno;
        if (typeof errno !== 'number') throw e;
        if (errno === libc.ENODEV) {
          throw new CaptureError(`interface ${name} does not exist — create it with scripts/vxlan-up.sh --vni N`, errno, { cause: e });
        }
        throw new CaptureError(`ioctl(${what}) on ${name} failed: ${libc.strerror(errno)} (errno ${errno})`, errno, { cause: e });
      }
    };
    call(SIOCGIFINDEX, 'SIOCGIFINDEX');
    const index = (libc.LITTLE_ENDIAN ? req.readInt32LE(IFNAMSIZ) : req.readInt32BE(IFNAMSIZ));
    call(SIOCGIFFLAGS, 'SIOCGIFFLAGS');
    const flags = libc.LITTLE_ENDIAN ? req.readUInt16LE(IFNAMSIZ) : req.readUInt16BE(IFNAMSIZ); // ifr_flags is a short
    call(SIOCGIFMTU, 'SIOCGIFMTU');
    const mtu = (libc.LITTLE_ENDIAN ? req.readInt32LE(IFNAMSIZ) : req.readInt32BE(IFNAMSIZ));
    return { index, up: (flags & IFF_UP) !== 0, running: (flags & IFF_RUNNING) !== 0, mtu };
  } finally {
    if (own >= 0) libc.close(own);
  }
}
