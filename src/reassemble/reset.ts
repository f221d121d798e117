import { TCP_ACK, TCP_SYN, type Packet } from '../decode/packet.js';
import { seqDiff } from './seq.js';

/**
 * What one side of a connection has shown on the mirror: enough to judge, as its receiver would,
 * a reset that claims to come from it.
 */
export class SideView {
  /** Latest timestamp value this side sent (the receiver's TS.Recent, RFC 7323), once seen. */
  tsRecent = 0;
  tsSeen = false;
  /** Its first segment (the SYN, or where we picked the flow up) carried a TCP-MD5 or TCP-AO option. */
  signed = false;

  /** A segment within the window that carries timestamps (check p.hasTimestamp first). */
  noteTimestamp(p: Packet): void {
    // A bare SYN only offers timestamps; the segments after it show they were agreed on.
    if ((p.flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN && (!this.tsSeen || seqDiff(p.tsVal, this.tsRecent) > 0)) {
      this.tsRecent = p.tsVal;
      this.tsSeen = true;
    }
  }
}

/** Why a reset was ignored; named after the reassembly events that count them. */
export type ResetIgnored = 'rst_ignored_seq' | 'rst_ignored_signed' | 'rst_ignored_timestamp';

/** Linux's PAWS window (TCP_PAWS_WINDOW): a timestamp this much older than TS.Recent still passes. */
const PAWS_WINDOW = 1;

/**
 * Would the receiver act on this reset from `sender`? `next` is the next sequence number the
 * mirror expects from the sender in order, `maxEnd` just past the highest one it has seen from it
 * (payload or FIN). Returns null to accept, or why the receiver ignores it.
 *
 * - Sequence (RFC 5961 §3, what Linux does): only a reset at exactly the receiver's RCV.NXT closes
 *   the connection; one elsewhere in the window draws a challenge ACK, one outside it is dropped.
 *   RCV.NXT is `next`, or, when the mirror lost a segment the receiver got, the highest end seen
 *   (held segments or a FIN beyond the hole): both are accepted.
 * - Signature: a TCP-MD5/AO option on a connection set up without one, or none on one set up with
 *   one, makes Linux drop the segment (counted as TCPMD5Unexpected / TCPMD5NotFound, or under the
 *   TCPAO* counters). We cannot check the signature itself: a signed reset on a signed
 *   connection is judged by its sequence number.
 * - Timestamps: Linux accepts a reset that fails PAWS; BSD stacks (and Suricata's model of them)
 *   drop it. We drop it too: keeping a flow the receiver killed costs little (the client sends no
 *   more on it, or the server's reset to its next segment closes it), while ending a flow the
 *   receiver kept loses the requests that follow, silently.
 */
export function judgeReset(p: Packet, sender: SideView, next: number, maxEnd: number): ResetIgnored | null {
  if (p.signed !== sender.signed) return 'rst_ignored_signed';
  if (seqDiff(p.seq, next) !== 0 && seqDiff(p.seq, maxEnd) !== 0) return 'rst_ignored_seq';
  if (p.hasTimestamp && sender.tsSeen && seqDiff(sender.tsRecent, p.tsVal) > PAWS_WINDOW) return 'rst_ignored_timestamp';
  return null;
}
