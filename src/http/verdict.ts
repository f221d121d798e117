/**
 * Did the server switch protocols? Reads the server's answer to a CONNECT or Upgrade request from
 * the server-to-client bytes the capture carries, through the one reply framer (reply.ts): a 2xx
 * answer to CONNECT turns the connection into a tunnel (RFC 9110 §9.3.6), a 101 answer to Upgrade
 * switches it (§7.8), any other final status leaves it in HTTP/1.1; interim 1xx are skipped. Bytes
 * that cannot be an HTTP/1.x answer mean the server speaks something else now: switched. Bytes are
 * read from the first server byte seen after the request; answers to earlier pipelined requests
 * that are still on their way would be misread, an accepted risk (clients do not pipeline before
 * CONNECT). The client bytes that follow the request are held here (64 KiB at most) until the
 * answer is known, to be parsed (stayed) or counted (switched) then.
 */
import { BODY_SWITCH } from './grammar.js';
import { ReplyFramer, type ReplyEvents, type ReplyHead } from './reply.js';

export type Verdict = 'pending' | 'switched' | 'stayed';

/** Client bytes held while waiting for the answer. */
const MAX_HELD = 64 * 1024;

export class SwitchVerdict implements ReplyEvents {
  private verdict: Verdict = 'pending';
  private readonly framer: ReplyFramer = new ReplyFramer(this);

  /** Client bytes after the request, held[0..heldLen). */
  held: Buffer | null = null;
  heldLen = 0;

  constructor(private readonly connect: boolean) {}

  /** Hold the client bytes d[p..); false (nothing held) when they would pass MAX_HELD. */
  hold(d: Buffer, p: number): boolean {
    const n = d.length - p;
    if (this.heldLen + n > MAX_HELD) return false;
    if (this.held === null || this.held.length < this.heldLen + n) {
      const nb = Buffer.allocUnsafeSlow(Math.min(MAX_HELD, Math.max(1024, 2 * (this.heldLen + n))));
      if (this.held !== null) this.held.copy(nb, 0, 0, this.heldLen);
      this.held = nb;
    }
    d.copy(this.held, this.heldLen, p);
    this.heldLen += n;
    return true;
  }

  /** Server bytes `buf[off..off+len)`, in order. Once not 'pending', the answer is final. */
  feed(buf: Uint8Array, off: number, len: number): Verdict {
    if (this.verdict === 'pending' && len > 0) this.framer.push(Buffer.from(buf.buffer, buf.byteOffset + off, len), 0, len);
    return this.verdict;
  }

  /** Client bytes held, and server bytes held while the answer's head is incomplete. */
  get bufferedBytes(): number {
    return this.heldLen + this.framer.bufferedBytes;
  }

  requestMethod(): string | null {
    return this.connect ? 'CONNECT' : null;
  }

  onHead(h: ReplyHead): void {
    this.verdict = h.framing === BODY_SWITCH ? 'switched' : 'stayed';
    this.framer.stop();
  }

  onBody(): void {}

  onEnd(): void {}

  /** Not HTTP/1.x (or a head over the framer's limit): whatever the server speaks, it is not HTTP/1.1 to us. */
  onError(): void {
    this.verdict = 'switched';
  }
}
