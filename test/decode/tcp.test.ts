/**
 * TCP options: timestamps and signatures are read from every segment and reset for the next;
 * unreadable options end parsing but never cost the segment or its payload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../src/decode/decoder.js';
import { buildFrame, TCP_ACK, TCP_PSH } from '../fixtures/frames.js';

const PAYLOAD = 'GET / HTTP/1.1\r\n\r\n';
const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 1, flags: TCP_ACK | TCP_PSH, payload: PAYLOAD };

const ts = (val: number, ecr: number) => {
  const b = Buffer.alloc(10);
  b[0] = 8;
  b[1] = 10;
  b.writeUInt32BE(val, 2);
  b.writeUInt32BE(ecr, 6);
  return b;
};
const md5 = Buffer.concat([Buffer.from([19, 18]), Buffer.alloc(16, 0xab)]);
const ao = Buffer.concat([Buffer.from([29, 16, 1, 2]), Buffer.alloc(12, 0xcd)]);
const NOP = Buffer.from([1]);

function decode(d: Decoder, options: Buffer) {
  const f = buildFrame({ ...base, tcpOptions: options });
  const p = d.decode(f, 0, f.length, f.length);
  assert.ok(p, 'the segment decodes');
  return {
    hasTimestamp: p.hasTimestamp,
    tsVal: p.tsVal,
    tsEcr: p.tsEcr,
    signed: p.signed,
    payload: Buffer.from(p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString(),
  };
}

const none = { hasTimestamp: false, tsVal: 0, tsEcr: 0, signed: false, payload: PAYLOAD };

test('timestamps after NOPs, with the values as unsigned 32-bit numbers', () => {
  const d = new Decoder(80);
  assert.deepEqual(decode(d, Buffer.concat([NOP, NOP, ts(0xfffffffe, 7)])), { ...none, hasTimestamp: true, tsVal: 0xfffffffe, tsEcr: 7 });
  // SYN-style: MSS, SACK-permitted, timestamps, NOP, window scale.
  const syn = Buffer.concat([Buffer.from([2, 4, 0x05, 0xb4, 4, 2]), ts(1, 0), NOP, Buffer.from([3, 3, 7])]);
  assert.deepEqual(decode(d, syn), { ...none, hasTimestamp: true, tsVal: 1 });
});

test('MD5 (kind 19) and AO (kind 29) mark the segment signed', () => {
  const d = new Decoder(80);
  assert.deepEqual(decode(d, Buffer.concat([NOP, NOP, md5])), { ...none, signed: true });
  assert.deepEqual(decode(d, Buffer.concat([ao, NOP, NOP, ts(5, 6)])), { ...none, signed: true, hasTimestamp: true, tsVal: 5, tsEcr: 6 });
});

test('fields are reset for each segment, with or without options', () => {
  const d = new Decoder(80);
  decode(d, Buffer.concat([md5, ts(9, 9)]));
  assert.deepEqual(decode(d, Buffer.alloc(0)), none);
  decode(d, Buffer.concat([md5, ts(9, 9)]));
  assert.deepEqual(decode(d, Buffer.concat([NOP, NOP, NOP, NOP])), none);
});

test('malformed options end parsing; the segment and its payload stay valid', () => {
  const d = new Decoder(80);
  const cases: Array<[string, Buffer, object]> = [
    ['length 0', Buffer.concat([Buffer.from([5, 0]), ts(1, 2)]), none],
    ['length 1', Buffer.concat([Buffer.from([5, 1]), ts(1, 2)]), none],
    ['runs past the header', Buffer.concat([NOP, NOP, Buffer.from([5, 40, 0, 0])]), none],
    ['timestamp cut by the header end', Buffer.concat([NOP, NOP, NOP, ts(1, 2).subarray(0, 8)]), none],
    ['kind without a length byte', Buffer.concat([NOP, NOP, NOP, Buffer.from([8])]), none],
    ['timestamp with a wrong length', Buffer.concat([Buffer.from([8, 6, 0, 0, 0, 1]), ts(3, 4)]), { ...none, hasTimestamp: true, tsVal: 3, tsEcr: 4 }],
    ['MD5 with a wrong length', Buffer.concat([Buffer.from([19, 4, 0, 0])]), none],
    ['AO too short', Buffer.concat([Buffer.from([29, 3, 0, 1])]), none],
    ['options after end-of-list', Buffer.concat([Buffer.from([0, 0]), ts(1, 2)]), none],
    ['timestamp before a broken option', Buffer.concat([ts(1, 2), Buffer.from([5, 0])]), { ...none, hasTimestamp: true, tsVal: 1, tsEcr: 2 }],
  ];
  for (const [name, opts, want] of cases) assert.deepEqual(decode(d, opts), want, name);
  const total = d.counters.anomalies.reduce((a, b) => a + b, 0);
  assert.equal(total, 0, 'unreadable options are not an anomaly');
});
