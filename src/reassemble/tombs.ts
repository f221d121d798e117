import type { Packet } from '../decode/packet.js';
import type { Flow } from './flow.js';

const LIVE = 1;
const SYN_SEEN = 2;
const CLOSED_BY_RST = 4;
const IPV6 = 8;
const FIRST_CAPACITY = 1024;

/**
 * What closed flows leave behind while they linger: each one's key, so that late copies of its
 * segments are known for what they are (not taken for a new connection picked up midstream), and
 * its ISN, to tell a retransmitted SYN from a new connection on the same ports. Connection churn
 * leaves one per connection for the whole linger time (10 s: 30,000 at 3k connections/s), so they
 * live in typed arrays, 64 bytes a slot, and not as objects: no garbage for V8 to promote and
 * collect, no walk of the flow table to expire them.
 *
 * Slots are taken in closing order and expire oldest first from `head`; a slot removed before its
 * time (a new connection took the ports) stays dead until `head` passes it. Lookups go by the key's
 * hash through `chains` (hash → first slot) and `nextSlot`.
 */
export class Tombs {
  private cap = 0;
  /** s0..s3, d0..d3 per slot (IPv4: only s0, d0). */
  private addr = new Int32Array(0);
  /** sport << 16 | dport. */
  private ports = new Int32Array(0);
  private vni = new Int32Array(0);
  private isn = new Uint32Array(0);
  private hash = new Int32Array(0);
  private closedAt = new Float64Array(0);
  private flags = new Uint8Array(0);
  private nextSlot = new Int32Array(0);
  private readonly chains = new Map<number, number>();
  /** Slots in use are [head, tail), in closing order. */
  private head = 0;
  private tail = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  bury(f: Flow, closedAt: number): void {
    if (this.tail === this.cap) this.makeRoom();
    const i = this.tail++;
    const a = i * 8;
    this.addr[a] = f.s0; this.addr[a + 1] = f.s1; this.addr[a + 2] = f.s2; this.addr[a + 3] = f.s3;
    this.addr[a + 4] = f.d0; this.addr[a + 5] = f.d1; this.addr[a + 6] = f.d2; this.addr[a + 7] = f.d3;
    this.ports[i] = (f.sport << 16) | f.dport;
    this.vni[i] = f.vni;
    this.isn[i] = f.isn;
    this.closedAt[i] = closedAt;
    this.flags[i] = LIVE | (f.synSeen ? SYN_SEEN : 0) | (f.closedByRst ? CLOSED_BY_RST : 0) | (f.ipVersion === 6 ? IPV6 : 0);
    this.link(i, f.hash);
    this.live++;
  }

  /** The slot of the client-to-server key of `p`, hashed as `hash`, or -1. */
  find(p: Packet, hash: number): number {
    const a = p.src;
    const b = p.dst;
    const ports = (p.srcPort << 16) | p.dstPort;
    const v6 = p.ipVersion === 6 ? IPV6 : 0;
    for (let i = this.chains.get(hash) ?? -1; i >= 0; i = this.nextSlot[i]) {
      const k = i * 8;
      const ad = this.addr;
      if (this.ports[i] === ports && ad[k] === (a[0] | 0) && ad[k + 4] === (b[0] | 0) && (this.flags[i] & IPV6) === v6 && this.vni[i] === p.vni
        && ad[k + 1] === (a[1] | 0) && ad[k + 2] === (a[2] | 0) && ad[k + 3] === (a[3] | 0) && ad[k + 5] === (b[1] | 0) && ad[k + 6] === (b[2] | 0) && ad[k + 7] === (b[3] | 0)) return i;
    }
    return -1;
  }

  /** A SYN with `seq` repeats the closed connection's own SYN (a retransmission, not a new connection). */
  sameSyn(i: number, seq: number): boolean {
    return (this.flags[i] & (SYN_SEEN | CLOSED_BY_RST)) === SYN_SEEN && this.isn[i] === seq;
  }

  remove(i: number): void {
    if (!(this.flags[i] & LIVE)) return;
    this.flags[i] = 0;
    this.live--;
    const h = this.hash[i];
    const first = this.chains.get(h)!;
    if (first === i) {
      if (this.nextSlot[i] >= 0) this.chains.set(h, this.nextSlot[i]);
      else this.chains.delete(h);
      return;
    }
    let prev = first;
    while (this.nextSlot[prev] !== i) prev = this.nextSlot[prev];
    this.nextSlot[prev] = this.nextSlot[i];
  }

  /** Forget tombs closed more than `lingerMs` before `now` (closing order is the capture's clock). */
  expire(now: number, lingerMs: number): void {
    for (let i = this.front(); i >= 0 && now - this.closedAt[i] > lingerMs; i = this.front()) this.remove(i);
  }

  /** Forget the oldest tomb (the table is full); false when there is none. */
  dropOldest(): boolean {
    const i = this.front();
    if (i < 0) return false;
    this.remove(i);
    return true;
  }

  clear(): void {
    this.chains.clear();
    this.flags.fill(0);
    this.head = this.tail = this.live = 0;
  }

  /** The oldest live slot, or -1; dead slots at the front are passed over for good. */
  private front(): number {
    while (this.head < this.tail && !(this.flags[this.head] & LIVE)) this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
    return this.head < this.tail ? this.head : -1;
  }

  private link(i: number, hash: number): void {
    this.hash[i] = hash;
    this.nextSlot[i] = this.chains.get(hash) ?? -1;
    this.chains.set(hash, i);
  }

  /** The slots are used up to the end: move the live ones to the front, growing when over half are live. */
  private makeRoom(): void {
    const cap = this.cap === 0 ? FIRST_CAPACITY : this.live * 2 > this.cap ? this.cap * 2 : this.cap;
    const old = { addr: this.addr, ports: this.ports, vni: this.vni, isn: this.isn, hash: this.hash, closedAt: this.closedAt, flags: this.flags };
    const from = this.head;
    const to = this.tail;
    this.cap = cap;
    this.addr = new Int32Array(cap * 8);
    this.ports = new Int32Array(cap);
    this.vni = new Int32Array(cap);
    this.isn = new Uint32Array(cap);
    this.hash = new Int32Array(cap);
    this.closedAt = new Float64Array(cap);
    this.flags = new Uint8Array(cap);
    this.nextSlot = new Int32Array(cap);
    this.chains.clear();
    this.head = this.tail = 0;
    for (let j = from; j < to; j++) {
      if (!(old.flags[j] & LIVE)) continue;
      const i = this.tail++;
      this.addr.set(old.addr.subarray(j * 8, j * 8 + 8), i * 8);
      this.ports[i] = old.ports[j];
      this.vni[i] = old.vni[j];
      this.isn[i] = old.isn[j];
      this.closedAt[i] = old.closedAt[j];
      this.flags[i] = old.flags[j];
      this.link(i, old.hash[j]);
    }
  }
}
