/**
 * Test helper: a Unix datagram socket bound like systemd's NOTIFY_SOCKET (a path, or "@name"
 * in the abstract namespace), read without blocking the event loop.
 */
import koffi from 'koffi';
import * as libc from '../../src/capture/libc.js';
import { notifySocketAddress } from '../../src/ops/notify.js';

const lib = koffi.load('libc.so.6');
const recv = lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number | bigint;
const MSG_DONTWAIT = 0x40;

export class NotifyListener {
  readonly messages: string[] = [];
  private fd: number;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly address: string) {
    this.fd = libc.socket(1 /* AF_UNIX */, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
    if (this.fd < 0) throw libc.syscallError('socket(AF_UNIX)');
    const { addr, len } = notifySocketAddress(address);
    if (libc.bind(this.fd, addr, len) < 0) throw libc.syscallError(`bind(${address})`);
    const buf = Buffer.alloc(4096);
    this.timer = setInterval(() => {
      for (;;) {
        const n = Number(recv(this.fd, buf, buf.length, MSG_DONTWAIT));
        if (n < 0) break;
        this.messages.push(buf.subarray(0, n).toString('utf8'));
      }
    }, 10);
  }

  /** Every assignment received, in order ("READY=1", "STATUS=…", "WATCHDOG=1", …). */
  assignments(): string[] {
    return this.messages.flatMap((m) => m.split('\n')).filter(Boolean);
  }

  async waitFor(assignment: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.assignments().includes(assignment)) {
      if (Date.now() > deadline) throw new Error(`no ${assignment} within ${timeoutMs} ms; got ${JSON.stringify(this.assignments())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }
}
