import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Packet } from '../../src/decode/packet.js';
import { Flow } from '../../src/reassemble/flow.js';
import { Tombs } from '../../src/reassemble/tombs.js';

/** A small key space, so that keys collide, hash chains form and ports are reused. */
const KEY = fc.record({ host: fc.integer({ min: 0, max: 5 }), sport: fc.constantFrom(1, 80, 40000, 65535), v6: fc.boolean(), vni: fc.constantFrom(-1, 7) });
interface Key { host: number; sport: number; v6: boolean; vni: number }

const id = (k: Key) => `${k.host}/${k.sport}/${k.v6}/${k.vni}`;
/** Deliberately few hashes: chains of several keys. */
const hashOf = (k: Key) => (k.host + k.sport) % 3;
const address = (k: Key) => Uint32Array.of(0xc0a80000 + k.host, k.v6 ? 0xffffffff : 0, 0, k.v6 ? k.host : 0);

function flow(k: Key, isn: number, rst: boolean): Flow {
  const f = new Flow();
  const s = address(k);
  [f.s0, f.s1, f.s2, f.s3] = s;
  [f.d0, f.d1, f.d2, f.d3] = [0x0a000001, 0, 0, 0];
  f.sport = k.sport;
  f.dport = 80;
  f.ipVersion = k.v6 ? 6 : 4;
  f.vni = k.vni;
  f.hash = hashOf(k);
  f.isn = isn;
  f.synSeen = true;
  f.closedByRst = rst;
  return f;
}

function packet(k: Key): Packet {
  return { src: address(k), dst: Uint32Array.of(0x0a000001, 0, 0, 0), srcPort: k.sport, dstPort: 80, ipVersion: k.v6 ? 6 : 4, vni: k.vni } as unknown as Packet;
}

const OP = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('bury' as const), k: KEY, isn: fc.constantFrom(0, 1, 0x80000000, 0xffffffff), rst: fc.boolean() }), weight: 8 },
  fc.record({ op: fc.constant('reuse' as const), k: KEY }),
  fc.record({ op: fc.constant('expire' as const), ms: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ op: fc.constant('dropOldest' as const) }),
  fc.record({ op: fc.constant('clear' as const) }),
);

test('Tombs behaves as a map of key to (ISN, how it ended) with closing-order expiry, through growth and compaction', () => {
  // Up to ~4,000 burials of at most 96 keys alive at once: the slots run out many times (compaction), with dead ones among them.
  fc.assert(fc.property(fc.array(OP, { minLength: 1000, maxLength: 5000 }), (ops) => {
    const tombs = new Tombs();
    // The model: live tombs in closing order (at most one per key: the table buries a key only when it has none).
    let model: Array<{ key: string; k: Key; isn: number; rst: boolean; at: number }> = [];
    let now = 0;
    for (const o of ops) {
      now++;
      if (o.op === 'bury') {
        if (model.some((m) => m.key === id(o.k))) continue;
        tombs.bury(flow(o.k, o.isn, o.rst), now);
        model.push({ key: id(o.k), k: o.k, isn: o.isn, rst: o.rst, at: now });
      } else if (o.op === 'reuse') {
        const i = tombs.find(packet(o.k), hashOf(o.k));
        const m = model.find((x) => x.key === id(o.k));
        assert.equal(i >= 0, m !== undefined, `find ${id(o.k)}`);
        if (m) {
          assert.equal(tombs.sameSyn(i, m.isn), !m.rst);
          assert.equal(tombs.sameSyn(i, (m.isn + 1) >>> 0), false);
          tombs.remove(i);
          model = model.filter((x) => x !== m);
        }
      } else if (o.op === 'expire') {
        tombs.expire(now, o.ms);
        model = model.filter((m) => now - m.at <= o.ms);
      } else if (o.op === 'dropOldest') {
        assert.equal(tombs.dropOldest(), model.length > 0);
        model.shift();
      } else {
        tombs.clear();
        model = [];
      }
      assert.equal(tombs.size, model.length);
    }
    for (const m of model) assert.ok(tombs.find(packet(m.k), hashOf(m.k)) >= 0);
  }), { numRuns: 60, seed: 15 });
});

test('Tombs: 100,000 tombs cost typed arrays, not objects, and expire oldest first', () => {
  const tombs = new Tombs();
  const keys: Key[] = [];
  for (let i = 0; i < 100_000; i++) {
    const k = { host: i, sport: 1024 + (i % 60000), v6: false, vni: -1 };
    keys.push(k);
    tombs.bury(flow(k, i, false), i);
  }
  assert.equal(tombs.size, 100_000);
  tombs.expire(100_000, 50_000);
  assert.equal(tombs.size, 50_000, 'closed at 50,000..99,999 are left');
  assert.equal(tombs.find(packet(keys[49_999]), hashOf(keys[49_999])), -1);
  assert.ok(tombs.find(packet(keys[50_000]), hashOf(keys[50_000])) >= 0);
});
