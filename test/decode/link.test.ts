import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINK_TYPES, type LinkType } from '../../src/linktypes.js';
import { Decoder } from '../../src/decode/decoder.js';
import type { Anomaly, Skip } from '../../src/decode/anomalies.js';
import { buildFrame } from '../fixtures/frames.js';

const v4 = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 1000, ack: 5, payload: 'GET / HTTP/1.1\r\n\r\n' };
const v6 = { ...v4, src: 'fd00::1', dst: 'fd00::2' };
/** The IP datagram of a frame built untagged. */
const ip = (spec: typeof v4) => buildFrame(spec).subarray(14);
const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

function decode(linkHeader: Buffer, datagram: Buffer, link: LinkType, capLen?: number) {
  const frame = Buffer.concat([linkHeader, datagram]);
  const d = new Decoder(80);
  const buf = Buffer.alloc(frame.length + 40, 0xee);
  frame.copy(buf, 20);
  const p = d.decode(buf, 20, capLen ?? frame.length, frame.length, link);
  return { p, d, l3: 20 + linkHeader.length };
}

test('link: each link type puts IPv4 and IPv6 where the IP decoders find them', () => {
  const sll = (proto: string) => hex(`0000 0001 0006 020000000001 0000 ${proto}`);
  const sll2 = (proto: string) => hex(`${proto} 0000 00000002 0001 00 06 020000000001 0000`);
  const cases: Array<[string, LinkType, Buffer, Buffer]> = [
    ['RAW v4', 101, Buffer.alloc(0), Buffer.alloc(0)],
    ['DLT_RAW 12', 12, Buffer.alloc(0), Buffer.alloc(0)],
    ['DLT_RAW 14', 14, Buffer.alloc(0), Buffer.alloc(0)],
    ['IPV4/IPV6', 228, Buffer.alloc(0), Buffer.alloc(0)],
    ['SLL', 113, sll('0800'), sll('86dd')],
    ['SLL with a VLAN tag put back', 113, sll('8100 0007 0800'), sll('8100 0007 86dd')],
    ['SLL2', 276, sll2('0800'), sll2('86dd')],
    ['NULL little-endian, macOS AF_INET6', 0, hex('02000000'), hex('1e000000')],
    ['NULL big-endian, FreeBSD AF_INET6', 0, hex('00000002'), hex('0000001c')],
    ['LOOP, OpenBSD AF_INET6', 108, hex('00000002'), hex('00000018')],
  ];
  for (const [name, link, h4, h6] of cases) {
    const a = decode(h4, ip(v4), link);
    assert.ok(a.p, `${name} v4`);
    assert.equal(a.p.ipVersion, 4, name);
    assert.equal(a.p.l3Offset, a.l3, name);
    assert.equal(a.p.dstPort, 80, name);
    assert.equal(Buffer.from(a.p.buf.subarray(a.p.payloadOffset, a.p.payloadOffset + a.p.payloadLength)).toString(), v4.payload, name);
    const b = decode(h6, ip(v6), link === 228 ? 229 : link);
    assert.ok(b.p, `${name} v6`);
    assert.equal(b.p.ipVersion, 6, name);
    assert.equal(b.p.l3Offset, b.l3, name);
    assert.equal(b.p.vlanDepth, name.includes('VLAN') ? 1 : 0, name);
  }
});

test('link: short headers, unknown versions and link types are counted anomalies; other protocols are not_ip', () => {
  const anomalies: Array<[string, Buffer, LinkType, Anomaly]> = [
    ['empty raw frame', Buffer.alloc(0), 101, 'link_truncated'],
    ['raw version 5', Buffer.from([0x50, ...ip(v4).subarray(1)]), 101, 'raw_ip_bad_version'],
    ['SLL cut at 15', hex('0000 0001 0006 020000000001 0000 08'), 113, 'link_truncated'],
    ['SLL2 cut at 19', hex('0800 0000 00000002 0001 00 06 020000000001 00'), 276, 'link_truncated'],
    ['NULL cut at 3', hex('020000'), 0, 'link_truncated'],
    ['SLL VLAN tag cut', hex('0000 0001 0006 020000000001 0000 8100 00'), 113, 'vlan_truncated'],
    ['unknown link type', ip(v4), 147, 'link_unknown'],
    ['IPV6 link type with an IPv4 packet', ip(v4), 229, 'raw_ip_bad_version'],
    ['IPV4 link type with an IPv6 packet', ip(v6), 228, 'raw_ip_bad_version'],
  ];
  for (const [name, frame, link, want] of anomalies) {
    const { p, d } = decode(Buffer.alloc(0), frame, link);
    assert.equal(p, null, name);
    assert.equal(d.counters.anomaly(want), 1, name);
    assert.equal(d.counters.anomalies.reduce((a, b) => a + b, 0), 1, `${name}: exactly one anomaly`);
  }
  const skips: Array<[string, Buffer, LinkType, Skip]> = [
    ['SLL ARP', hex('0000 0001 0006 020000000001 0000 0806'), 113, 'not_ip'],
    ['SLL netlink (protocol field is a netlink family)', hex('0004 0338 0000 0000000000000000 0800'), 113, 'not_ip'],
    ['SLL2 netlink', hex('0800 0000 00000002 0338 04 00 0000000000000000'), 276, 'not_ip'],
    ['NULL AF_ISO', hex('07000000'), 0, 'not_ip'],
  ];
  for (const [name, header, link, want] of skips) {
    const { p, d } = decode(header, ip(v4), link);
    assert.equal(p, null, name);
    assert.equal(d.counters.skip(want), 1, name);
    assert.equal(d.counters.anomalies.reduce((a, b) => a + b, 0), 0, name);
  }
});

test('link: every link type a pcap source may pass is one decode places', () => {
  for (const [link, name] of LINK_TYPES) {
    const { d } = decode(Buffer.alloc(0), Buffer.alloc(0), link);
    assert.equal(d.counters.anomaly('link_unknown'), 0, `${name} (${link})`);
  }
});

test('link: random bytes under every link type never throw', () => {
  const d = new Decoder(80);
  let seed = 11;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const good = Buffer.concat([hex('0000 0001 0006 020000000001 0000 0800'), ip(v4)]);
  for (const link of LINK_TYPES.keys()) {
    for (let i = 0; i < 3000; i++) {
      const f = Buffer.from(good);
      for (let k = 0; k < 1 + (rnd() % 6); k++) f[rnd() % 60] = rnd();
      d.decode(f, 0, rnd() % (f.length + 1), f.length, link);
    }
  }
});
