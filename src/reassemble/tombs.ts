import type { Packet } from '../decode/packet.js';
import type { Flow } from './flow.js';

/**
 * What a closed flow leaves behind while it lingers: its key, so that late copies of its segments
 * are known for what they are (not taken for a new connection picked up midstream), and its ISN,
 * to tell a retransmitted SYN from a new connection on the same ports. About a fifth of a Flow's
 * memory: connection churn leaves one per connection for the whole linger time.
 */
export class Tomb {
  readonly s0: number; readonly s1: number; readonly s2: number; readonly s3: number;
  readonly d0: number; readonly d1: number; readonly d2: number; readonly d3: number;
  readonly sport: number;
  readonly dport: number;
  readonly ipVersion: number;
  readonly vni: number;
  readonly hash: number;
  readonly isn: number;
  readonly synSeen: boolean;
  readonly closedByRst: boolean;
  readonly closedAt: number;
  next: Tomb | null = null;
  /** False once removed (a new connection took the ports, or the table was cleared). */
  live = true;

  constructor(f: Flow, closedAt: number) {
    this.s0 = f.s0; this.s1 = f.s1; this.s2 = f.s2; this.s3 = f.s3;
    this.d0 = f.d0; this.d1 = f.d1; this.d2 = f.d2; this.d3 = f.d3;
    this.sport = f.sport;
    this.dport = f.dport;
    this.ipVersion = f.ipVersion;
    this.vni = f.vni;
    this.hash = f.hash;
    this.isn = f.isn;
    this.synSeen = f.synSeen;
    this.closedByRst = f.closedByRst;
    this.closedAt = closedAt;
  }
}

/**
 * The lingering closed flows of one table, by key hash for lookups and in closing order for
 * expiry, so that forgetting them costs no walk of the table.
 */
export class Tombs {
  private readonly chains = new Map<number, Tomb>();
  /** In closing order; removed tombs stay until they reach the front. */
  private queue: Tomb[] = [];
  private head = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  bury(f: Flow, closedAt: number): void {
    const t = new Tomb(f, closedAt);
    t.next = this.chains.get(t.hash) ?? null;
    this.chains.set(t.hash, t);
    this.queue.push(t);
    this.live++;
  }

  /** The tomb of the client-to-server key of `p`, hashed as `hash`. */
  find(p: Packet, hash: number): Tomb | null {
    const a = p.src;
    const b = p.dst;
    for (let t = this.chains.get(hash) ?? null; t; t = t.next) {
      if (t.sport === p.srcPort && t.dport === p.dstPort && t.s0 === a[0] && t.d0 === b[0] && t.s1 === a[1] && t.s2 === a[2] && t.s3 === a[3] && t.d1 === b[1] && t.d2 === b[2] && t.d3 === b[3] && t.ipVersion === p.ipVersion && t.vni === p.vni) return t;
    }
    return null;
  }

  remove(t: Tomb): void {
    if (!t.live) return;
    t.live = false;
    this.live--;
    const head = this.chains.get(t.hash);
    if (head === t) {
      if (t.next) this.chains.set(t.hash, t.next);
      else this.chains.delete(t.hash);
    } else {
      let prev: Tomb | null = head ?? null;
      while (prev && prev.next !== t) prev = prev.next;
      if (prev) prev.next = t.next;
    }
    t.next = null;
  }

  /** Forget tombs closed more than `lingerMs` before `now` (closing order is the capture's clock). */
  expire(now: number, lingerMs: number): void {
    for (let t = this.front(); t && now - t.closedAt > lingerMs; t = this.front()) this.remove(t);
  }

  /** Forget the oldest tomb (the table is full); false when there is none. */
  dropOldest(): boolean {
    const t = this.front();
    if (!t) return false;
    this.remove(t);
    return true;
  }

  clear(): void {
    for (let t = this.front(); t; t = this.front()) this.remove(t);
  }

  /** The oldest live tomb; drops removed ones from the front of the queue on the way. */
  private front(): Tomb | null {
    const q = this.queue;
    while (this.head < q.length && !q[this.head].live) this.head++;
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
    return this.head < this.queue.length ? this.queue[this.head] : null;
  }
}
