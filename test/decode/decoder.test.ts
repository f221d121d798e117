import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../src/decode/decoder.js';
import type { ANOMALIES } from '../../src/decode/anomalies.js';
import { buildFrame, TCP_ACK, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';

const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 1000, ack: 5, payload: 'GET / HTTP/1.1\r\n\r\n' };

function decodeOne(frame: Buffer, port = 80, wireLen = frame.length, capLen = frame.length) {
  const d = new Decoder(port);
  // Put the frame at a non-zero offset in a larger buffer, as the ring does.
  const ring = Buffer.alloc(frame.length + 64, 0xee);
  frame.copy(ring, 32);
  const p = d.decode(ring, 32, capLen, wireLen);
  return { p, d, ring };
}

test('IPv4 TCP: ports, seq, flags and payload view', () => {
  const { p, ring } = decodeOne(buildFrame({ ...base, flags: TCP_ACK | TCP_PSH }));
  assert.ok(p);
  assert.equal(p.ipVersion, 4);
  assert.equal(p.src[0], 0x0a000001);
  assert.equal(p.dst[0], 0x0a000002);
  assert.equal(p.srcPort, 40000);
  assert.equal(p.dstPort, 80);
  assert.equal(p.seq, 1000);
  assert.equal(p.flags, TCP_ACK | TCP_PSH);
  assert.equal(Buffer.from(ring.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString(), base.payload);
  assert.equal(p.payloadMissing, 0);
});

test('IPv4 options, TCP options, VLAN and QinQ tags', () => {
  const f = buildFrame({ ...base, vlans: [100, 200], ipOptions: Buffer.from([1, 1, 1, 0]), tcpOptions: Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2]) });
  const { p, ring } = decodeOne(f);
  assert.ok(p);
  assert.equal(p.vlanDepth, 2);
  assert.equal(Buffer.from(ring.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString(), base.payload);
});

test('IPv6 with extension headers', () => {
  const f = buildFrame({ ...base, src: 'fd00::1', dst: 'fd00::2', ipv6Ext: [0, 60] });
  const { p, ring } = decodeOne(f);
  assert.ok(p);
  assert.equal(p.ipVersion, 6);
  assert.equal(p.src[3], 1);
  assert.equal(p.dst[3], 2);
  assert.equal(p.dst[0], 0xfd000000);
  assert.equal(Buffer.from(ring.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString(), base.payload);
});

test('Ethernet padding is not payload', () => {
  const f = buildFrame({ ...base, payload: '', flags: TCP_SYN });
  const padded = Buffer.concat([f, Buffer.alloc(60 - f.length > 0 ? 60 - f.length : 6)]);
  const { p } = decodeOne(padded);
  assert.ok(p);
  assert.equal(p.payloadLength, 0);
  assert.equal(p.payloadMissing, 0);
});

test('a frame cut short by snaplen reports the missing payload, never garbage', () => {
  const f = buildFrame({ ...base, payload: 'x'.repeat(1000) });
  const { p } = decodeOne(f, 80, f.length, f.length - 300);
  assert.ok(p);
  assert.equal(p.payloadLength, 700);
  assert.equal(p.payloadMissing, 300);
});

test('wrong TCP checksum still decodes (AWS mirrors offloaded checksums)', () => {
  const { p } = decodeOne(buildFrame({ ...base, badChecksum: true }));
  assert.ok(p);
});

test('malformed frames are counted by name, never thrown', () => {
  const cases: Array<[string, Buffer, number?]> = [];
  const good = buildFrame(base);
  cases.push(['eth_truncated', good.subarray(0, 10)]);
  cases.push(['ipv4_truncated', good.subarray(0, 20)]);
  const badVer = Buffer.from(good); badVer[14] = 0x55; cases.push(['ipv4_bad_version', badVer]);
  const badIhl = Buffer.from(good); badIhl[14] = 0x42; cases.push(['ipv4_bad_header_length', badIhl]);
  const badTot = Buffer.from(good); badTot.writeUInt16BE(10, 16); cases.push(['ipv4_bad_total_length', badTot]);
  cases.push(['fragment_truncated', buildFrame({ ...base, ipv4Fragment: { offset: 10, more: false } }).subarray(0, 14 + 20 + 8)]);
  cases.push(['fragment_bad_length', buildFrame({ ...base, src: 'fd00::1', dst: 'fd00::2', ipv6Fragment: { offset: 0, more: true } })]);
  cases.push(['ipv6_truncated', buildFrame({ ...base, src: 'fd00::1', dst: 'fd00::2' }).subarray(0, 40)]);
  cases.push(['vlan_too_deep', buildFrame({ ...base, vlans: [1, 2, 3] })]);
  const badOff = Buffer.from(good); badOff[14 + 20 + 12] = 0x30; cases.push(['tcp_bad_data_offset', badOff]);
  cases.push(['tcp_truncated', good.subarray(0, 14 + 20 + 10)]);
  for (const [name, frame] of cases) {
    const { p, d } = decodeOne(frame);
    assert.equal(p, null, name);
    assert.equal(d.counters.anomaly(name as (typeof ANOMALIES)[number]), 1, name);
    const total = d.counters.anomalies.reduce((a, b) => a + b, 0);
    assert.equal(total, 1, `${name}: exactly one anomaly`);
  }
});

test('other ports and non-TCP are skipped, not anomalies', () => {
  const { p, d } = decodeOne(buildFrame({ ...base, dport: 8080 }));
  assert.equal(p, null);
  assert.equal(d.counters.skip('other_port'), 1);
  const udp = buildFrame(base);
  udp[14 + 9] = 17;
  const r = decodeOne(udp);
  assert.equal(r.p, null);
  assert.equal(r.d.counters.skip('not_tcp'), 1);
  const arp = Buffer.from(base.payload.padEnd(60, '\0'));
  arp.writeUInt16BE(0x0806, 12);
  const a = decodeOne(arp);
  assert.equal(a.d.counters.skip('not_ip'), 1);
});

test('random bytes never throw', () => {
  const d = new Decoder(80);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const good = buildFrame(base);
  for (let i = 0; i < 20000; i++) {
    const f = Buffer.from(good);
    const n = 1 + (rnd() % 6);
    for (let k = 0; k < n; k++) f[rnd() % Math.min(f.length, 80)] = rnd();
    d.decode(f, 0, rnd() % (f.length + 1), f.length);
  }
});
