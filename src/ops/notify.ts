/**
 * sd_notify(3) without native code: one AF_UNIX datagram per state change to $NOTIFY_SOCKET
 * (a path, or an abstract socket written "@name"). Node has no Unix datagram sockets, so the
 * socket(2)/sendto(2) calls go through the koffi libc binding capture already uses.
 */
import * as libc from '../capture/libc.js';

const AF_UNIX = 1;
const SUN_PATH_MAX = 108;

export interface Notifier {
  /** False when not started by systemd (no NOTIFY_SOCKET): every send is then a no-op. */
  readonly enabled: boolean;
  /** Half of WATCHDOG_USEC in ms when systemd expects WATCHDOG=1 from this process, else null. */
  readonly watchdogIntervalMs: number | null;
  /** Sends newline-separated assignments ("READY=1\nSTATUS=…"); returns 0 or the errno. */
  send(state: string): number;
  close(): void;
}

/** struct sockaddr_un for a NOTIFY_SOCKET value; the length covers only the bytes used. */
export function notifySocketAddress(value: string): { addr: Buffer; len: number } {
  const abstract = value.startsWith('@');
  const name = Buffer.from(abstract ? value.slice(1) : value, 'utf8');
  if (!abstract && !value.startsWith('/')) throw new Error(`NOTIFY_SOCKET must be an absolute path or @abstract, got ${JSON.stringify(value)}`);
  // An abstract name has a leading NUL and no terminator; a path needs its terminating NUL.
  const pathLen = abstract ? 1 + name.length : name.length + 1;
  if (pathLen > SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET is longer than ${SUN_PATH_MAX - 1} bytes`);
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  if (libc.LITTLE_ENDIAN) addr.writeUInt16LE(AF_UNIX, 0);
  else addr.writeUInt16BE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  return { addr, len: 2 + pathLen };
}

/** WATCHDOG_USEC/WATCHDOG_PID as sd_watchdog_enabled(3) reads them, halved as it recommends. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

const disabled: Notifier = { enabled: false, watchdogIntervalMs: null, send: () => 0, close: () => undefined };

/** A Notifier for this process's environment; disabled when NOTIFY_SOCKET is unset. */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const value = env.NOTIFY_SOCKET;
  if (!value) return disabled;
  const { addr, len } = notifySocketAddress(value);
  let fd = libc.socket(AF_UNIX, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.syscallError('socket(AF_UNIX, SOCK_DGRAM)');
  return {
    enabled: true,
    watchdogIntervalMs: watchdogIntervalMs(env),
    send(state: string): number {
      if (fd < 0) return 0;
      const msg = Buffer.from(state, 'utf8');
      const r = Number(libc.sendto(fd, msg, msg.length, 0, addr, len));
      return r < 0 ? libc.errno() : 0;
    },
    close(): void {
      if (fd >= 0) libc.close(fd);
      fd = -1;
    },
  };
}
