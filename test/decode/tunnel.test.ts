/**
 * User-space decapsulation: VXLAN (RFC 7348) and GENEVE (RFC 8926) as AWS Traffic Mirroring and
 * Gateway Load Balancer send them, decoded in place; every malformed header is a named anomaly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ANOMALIES, SKIPS, type Anomaly, type Skip } from '../../src/decode/anomalies.js';
import { DecodeCounters } from '../../src/decode/anomalies.js';
import { Decoder } from '../../src/decode/decoder.js';
import { decodeGeneve, GeneveHeader } from '../../src/decode/geneve.js';
import { VniCounts, VNI_OTHER } from '../../src/decode/tunnel.js';
import { decodeVxlan } from '../../src/decode/vxlan.js';
import { buildFrame, TCP_ACK, TCP_PSH } from '../fixtures/frames.js';
import { ethernet, geneveOption, genevePayload, GWLB_IDS, gwlbMirrorFrame, ipv4Udp } from '../fixtures/geneve.js';
import { vxlanFrame, vxlanPayload } from '../fixtures/vxlan.js';

const REQ = 'GET /tunnel HTTP/1.1\r\nHost: x\r\n\r\n';
const inner = buildFrame({ src: '10.99.0.1', dst: '10.213.1.2', sport: 40000, dport: 80, seq: 1000, ack: 1, flags: TCP_ACK | TCP_PSH, payload: REQ });

function decode(frame: Buffer, vnis: number[] = []) {
  const d = new Decoder(80, {}, { vnis });
  const ring = Buffer.alloc(frame.length + 64, 0xee);
  frame.copy(ring, 32);
  const p = d.decode(ring, 32, frame.length, frame.length);
  return { p, d, ring };
}

function counted(d: Decoder): Record<string, number> {
  const out: Record<string, number> = {};
  ANOMALIES.forEach((a: Anomaly) => d.counters.anomaly(a) && (out[a] = d.counters.anomaly(a)));
  SKIPS.forEach((s: Skip) => d.counters.skip(s) && (out[s] = d.counters.skip(s)));
  return out;
}

test('RFC 7348 §5 header bytes: flags 0x08 (I), VNI in bytes 4-6', () => {
  const c = new DecodeCounters();
  const h = Buffer.from([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
  assert.equal(decodeVxlan(h, 0, 8, c), 0x123456);
  // Reserved bits set are ignored on receipt (§5: "MUST be ignored").
  assert.equal(decodeVxlan(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 7, 0xff]), 0, 8, c), 7);
  assert.equal(decodeVxlan(Buffer.from([0x00, 0, 0, 0, 0, 0, 7, 0]), 0, 8, c), -1);
  assert.equal(c.anomaly('vxlan_bad_flags'), 1);
  assert.equal(decodeVxlan(h, 0, 7, c), -1);
  assert.equal(c.anomaly('vxlan_truncated'), 1);
});

test('RFC 8926 §3.4 header bytes: Ver 0, Opt Len, O/C, protocol type, VNI; TLV options stepped over', () => {
  const c = new DecodeCounters();
  const h = new GeneveHeader();
  // Opt Len 2 (one 8-byte option of an unknown class, critical type bit set), protocol 0x6558, VNI 0x00abcd.
  const bytes = Buffer.from([0x02, 0x40, 0x65, 0x58, 0x00, 0xab, 0xcd, 0x00, 0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef, 0xaa]);
  assert.equal(decodeGeneve(bytes, 0, bytes.length, h, c), true);
  assert.equal(h.vni, 0xabcd);
  assert.equal(h.protocol, 0x6558);
  assert.equal(h.payloadOffset, 16);
  assert.equal(h.gwlbCookie, -1);
});

test('GWLB: options of class 0x0108 are read in place; 68 bytes of overhead; the VNI is the mirror session\'s', () => {
  const frame = gwlbMirrorFrame(vxlanPayload(42, inner));
  const { p, d, ring } = decode(frame);
  assert.ok(p, JSON.stringify(counted(d)));
  assert.equal(p.vni, 42, 'the innermost VNI (VXLAN), not GWLB\'s GENEVE VNI 0');
  assert.equal(p.buf, ring, 'decoded in place: the payload is a view into the ring');
  assert.equal(ring.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength).toString(), REQ);
  assert.deepEqual([...d.vnis.frames], [[42, 1]]);
  // The GENEVE header alone: GWLB's ids where the options put them.
  const c = new DecodeCounters();
  const h = new GeneveHeader();
  const g = 14 + 20 + 8;
  assert.equal(decodeGeneve(frame, g, frame.length, h, c), true);
  assert.equal(frame[g] & 0x3f, 8, 'Opt Len 8: 32 bytes of options');
  assert.equal(h.payloadOffset - 14, 68, 'outer IPv4 + UDP + GENEVE + options = 68 bytes');
  assert.equal(frame.readBigUInt64BE(h.gwlbEndpoint), GWLB_IDS.endpoint);
  assert.equal(frame.readBigUInt64BE(h.gwlbAttachment), GWLB_IDS.attachment);
  assert.equal(h.gwlbCookie, GWLB_IDS.cookie);
  assert.equal(h.vni, 0);
});

test('VXLAN straight to the device: VNI kept, payload a view', () => {
  const { p, d, ring } = decode(vxlanFrame({ vni: 7, inner }));
  assert.ok(p);
  assert.equal(p.vni, 7);
  assert.equal(ring.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength).toString(), REQ);
  assert.deepEqual(counted(d), {});
});

test('GENEVE around IPv6 and around Ethernet (protocol types 0x86DD and 0x6558)', () => {
  const v6 = buildFrame({ src: 'fd00::1', dst: 'fd00::2', sport: 40000, dport: 80, seq: 1, ack: 1, flags: TCP_ACK | TCP_PSH, payload: REQ });
  const v6ip = v6.subarray(14);
  const a = decode(ethernet(ipv4Udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 6081, payload: genevePayload({ inner: v6ip, protocol: 0x86dd, vni: 5 }) })));
  assert.ok(a.p);
  assert.equal(a.p.ipVersion, 6);
  assert.equal(a.p.vni, 5);
  const b = decode(ethernet(ipv4Udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 6081, payload: genevePayload({ inner, protocol: 0x6558, vni: 9, options: Buffer.alloc(0) }) })));
  assert.ok(b.p);
  assert.equal(b.p.vni, 9);
});

test('--vni keeps only the VNIs named; the rest are counted skipped (other_vni) and still counted per VNI', () => {
  const kept = decode(vxlanFrame({ vni: 7, inner }), [7, 8]);
  assert.ok(kept.p);
  const other = decode(gwlbMirrorFrame(vxlanPayload(9, inner)), [7, 8]);
  assert.equal(other.p, null);
  assert.deepEqual(counted(other.d), { other_vni: 1 });
  assert.deepEqual([...other.d.vnis.frames], [[7, 0], [8, 0], [9, 1]], 'the --vni ones from 0, the others as they come');
});

test('what is not a tunnel is skipped (not_tunnel); without --encap-interface nothing is decapsulated', () => {
  assert.deepEqual(counted(decode(inner).d), { not_tunnel: 1 });
  assert.deepEqual(counted(decode(vxlanFrame({ vni: 7, inner, dport: 53 })).d), { not_tunnel: 1 });
  const plain = new Decoder(80);
  const f = vxlanFrame({ vni: 7, inner });
  assert.equal(plain.decode(f, 0, f.length, f.length), null);
  assert.equal(plain.counters.skip('not_tcp'), 1);
  assert.equal(plain.vnis.frames.size, 0);
});

const outer = (payload: Buffer, dport: number, udpLength?: number) => ethernet(ipv4Udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport, payload, udpLength }));
const geneve = (s: Partial<Parameters<typeof genevePayload>[0]>) => outer(genevePayload({ inner: ipv4Udp({ src: '10.0.1.1', dst: '10.0.1.2', sport: 2, dport: 4789, payload: vxlanPayload(3, inner) }), ...s }), 6081);

test('malformed VXLAN, GENEVE and UDP headers are named anomalies, never a crash', () => {
  const cases: Array<[string, Buffer]> = [
    ['udp_bad_length', outer(vxlanPayload(1, inner), 4789, 4)],
    ['udp_bad_length', outer(vxlanPayload(1, inner), 4789, 8 + vxlanPayload(1, inner).length + 1)],
    ['udp_truncated', outer(Buffer.alloc(0), 4789).subarray(0, 14 + 20 + 5)],
    ['vxlan_truncated', outer(Buffer.from([8, 0, 0, 0]), 4789)],
    ['vxlan_bad_flags', outer(Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 1, 0]), inner]), 4789)],
    ['geneve_truncated', outer(Buffer.from([0, 0, 8, 0, 0, 0]), 6081)],
    ['geneve_bad_version', geneve({ version: 1 })],
    ['geneve_bad_option_length', geneve({ optLenWords: 63 })],
    ['geneve_bad_option_length', geneve({ options: geneveOption(0x0108, 1, Buffer.alloc(8), 9) })],
    ['geneve_bad_protocol', geneve({ protocol: 0x88cc })],
    ['raw_ip_bad_version', geneve({ protocol: 0x86dd })],
    ['geneve_control', geneve({ oam: true })],
    // The VXLAN datagram inside GENEVE with a UDP length past its IP packet.
    ['udp_bad_length', outer(genevePayload({ inner: ipv4Udp({ src: '10.0.1.1', dst: '10.0.1.2', sport: 2, dport: 4789, payload: vxlanPayload(3, inner), udpLength: 4000 }) }), 6081)],
    ['encap_too_deep', outer(vxlanPayload(1, ethernet(ipv4Udp({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 4789, payload: vxlanPayload(2, ethernet(ipv4Udp({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 4789, payload: vxlanPayload(3, ethernet(ipv4Udp({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 4789, payload: vxlanPayload(4, inner) }))) }))) }))), 4789)],
  ];
  for (const [name, frame] of cases) {
    const { p, d } = decode(frame);
    assert.equal(p, null, name);
    assert.deepEqual(counted(d), { [name]: 1 }, name);
  }
});

test('VNI labels are bounded: past the cap, frames count under "other"', () => {
  const v = new VniCounts(2);
  for (const vni of [1, 2, 1, 3, 4, 2]) v.add(vni);
  assert.deepEqual([...v.frames].sort((a, b) => a[0] - b[0]), [[VNI_OTHER, 2], [1, 2], [2, 2]]);
  // --vni ones are labelled from 0 and never pushed out by others.
  const k = new VniCounts(1, [9]);
  for (const vni of [1, 2, 9]) k.add(vni);
  assert.deepEqual([...k.frames].sort((a, b) => a[0] - b[0]), [[VNI_OTHER, 1], [1, 1], [9, 1]]);
});

test('fuzz: cut, flipped or random tunnel frames never throw, and every frame is returned or counted', () => {
  const seeds = [gwlbMirrorFrame(vxlanPayload(42, inner)), vxlanFrame({ vni: 7, inner }), geneve({})];
  const d = new Decoder(80, {}, { vnis: [] });
  const total = () => d.counters.anomalies.reduce((a, b) => a + b, 0) + d.counters.skips.reduce((a, b) => a + b, 0);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), (i, flips, cut) => {
      const f = Buffer.from(seeds[i]);
      for (const [at, v] of flips) f[at % f.length] = v;
      const len = Math.max(1, f.length - (cut % 64));
      const before = total();
      const p = d.decode(f, 0, len, f.length);
      assert.ok(p !== null || total() > before, 'a frame dropped without a counter');
    }),
    { numRuns: 3000 },
  );
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
    const f = Buffer.concat([outer(Buffer.alloc(0), 6081).subarray(0, 42), Buffer.from(bytes)]);
    d.decode(f, 0, f.length, f.length);
  }), { numRuns: 2000 });
});
