import { TCP_FIN, TCP_SYN, type Packet } from '../decode/packet.js';
import { PeerView, type Flow } from './flow.js';
import { seqAdd, seqDiff } from './seq.js';

/** A segment this far from what we expect is not believed (as on the client side). */
const MAX_WINDOW = 1 << 30;

/**
 * A segment from the other side, not a reset. Tracks where that side's stream is (to judge its
 * resets) and hands its in-order payload to `sink.peer`; the first segment seen is announced with
 * length 0, so the sink knows the other side is visible. Segments ahead of a hole are not
 * reassembled: the sink only sniffs status lines, and is given nothing past a hole (`peer` has no
 * way to announce one). Bare ACKs do not come here (the table skips them before the flow lookup):
 * they would only refresh the timestamp, which the next segment with payload does too.
 */
export function peerSegment(f: Flow, p: Packet): void {
  const syn = (p.flags & TCP_SYN) !== 0;
  const len = p.payloadLength + p.payloadMissing;
  const start = syn ? seqAdd(p.seq, 1) : p.seq;
  const end = seqAdd(start, p.flags & TCP_FIN ? len + 1 : len);
  let v = f.peer;
  if (v === null) {
    v = f.peer = new PeerView();
    v.next = start;
    v.maxEnd = start;
    v.signed = p.signed;
    f.sink.peer?.(p.buf, p.payloadOffset, 0);
  }
  const rel = seqDiff(start, v.next);
  if (rel > MAX_WINDOW || rel < -MAX_WINDOW) return;
  if (seqDiff(end, v.maxEnd) > 0) v.maxEnd = end;
  if (p.hasTimestamp) v.noteTimestamp(p);
  if (rel > 0 || seqDiff(end, v.next) <= 0) return;
  // In order, possibly overlapping bytes already handed on: only the new ones.
  const cut = -rel;
  if (v.delivering && cut < p.payloadLength) f.sink.peer?.(p.buf, p.payloadOffset + cut, p.payloadLength - cut);
  if (p.payloadMissing && cut < len) v.delivering = false;
  v.next = end;
}
