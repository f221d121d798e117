/**
 * Did the server switch protocols? Reads the server's answer to a CONNECT or Upgrade request from
 * the server-to-client bytes the capture carries (RFC 9110 §9.3.6: a 2xx answer to CONNECT turns
 * the connection into a tunnel; §7.8: a 101 answer to Upgrade switches it; any other final status
 * leaves it in HTTP/1.1). Interim 1xx answers (100, 102, 103) are skipped. Bytes are read from the
 * first server byte seen after the request; answers to earlier pipelined requests that are still
 * on their way would be misread, an accepted risk (clients do not pipeline before CONNECT).
 */
export type Verdict = 'pending' | 'switched' | 'stayed';

/** An interim answer's header section may be this long before we stop waiting for the final one. */
const MAX_HELD = 8 * 1024;
/** "HTTP/1.1 200\r" is the shortest status line that shows its code and ends it. */
const MIN_STATUS_LINE = 13;
const STATUS_LINE = /^HTTP\/1\.[01] ([0-9]{3})[ \r]/;

export class SwitchVerdict {
  private held = '';

  constructor(private readonly connect: boolean) {}

  /** Server bytes `buf[off..off+len)`, in order. Once not 'pending', the answer is final. */
  feed(buf: Uint8Array, off: number, len: number): Verdict {
    this.held += Buffer.from(buf.buffer, buf.byteOffset + off, len).toString('latin1');
    for (;;) {
      if (this.held.length < MIN_STATUS_LINE) return 'pending';
      const m = STATUS_LINE.exec(this.held);
      // Not an HTTP/1.x answer: whatever the server speaks now, it is not HTTP/1.1 to us.
      if (m === null) return 'switched';
      const code = Number(m[1]);
      if (code >= 200 || code === 101) return this.decide(code);
      const end = this.held.indexOf('\r\n\r\n');
      if (end < 0) return this.held.length > MAX_HELD ? 'switched' : 'pending';
      this.held = this.held.slice(end + 4);
    }
  }

  /** Bytes held while an interim answer is incomplete. */
  get heldBytes(): number {
    return this.held.length;
  }

  private decide(code: number): Verdict {
    if (this.connect) return code === 101 || (code >= 200 && code < 300) ? 'switched' : 'stayed';
    return code === 101 ? 'switched' : 'stayed';
  }
}
