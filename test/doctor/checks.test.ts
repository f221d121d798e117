import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasNetRaw, judgeFlows, judgeSample, judgeTunnels, checkDestination } from '../../src/doctor/checks.js';
import { FlowSample } from '../../src/doctor/flows.js';
import { toLinkFacts, type LinkFacts } from '../../src/doctor/links.js';
import { parseVxlanFrame, type Sample, type TunnelSample } from '../../src/doctor/sample.js';
import { formatCheck } from '../../src/cli/doctor.js';
import { buildFrame, TCP_ACK, TCP_SYN } from '../fixtures/frames.js';
import { vxlanFrame } from '../fixtures/vxlan.js';

const inner = buildFrame({ src: '10.0.1.5', dst: '10.0.1.2', sport: 40000, dport: 80, seq: 1, ack: 1, flags: TCP_ACK, payload: 'x'.repeat(1000) });

test('parseVxlanFrame reads the VNI and spots a packet the mirror cut short', () => {
  const whole = vxlanFrame({ vni: 7, inner });
  const d = parseVxlanFrame(whole, 0, whole.length, 4789)!;
  assert.equal(d.vni, 7);
  assert.equal(d.innerIpLength, inner.length - 14);
  assert.equal(d.innerBytes, inner.length - 14);
  const cut = vxlanFrame({ vni: 7, inner, cutTo: 600 });
  const c = parseVxlanFrame(cut, 0, cut.length, 4789)!;
  assert.ok(c.innerIpLength! > c.innerBytes);
  assert.equal(parseVxlanFrame(whole, 0, whole.length, 4790), null, 'another port');
  const notVx = Buffer.from(whole);
  notVx[42] = 0; // no I flag
  assert.equal(parseVxlanFrame(notVx, 0, notVx.length, 4789)!.vni, -1);
});

const vxlan0: LinkFacts = toLinkFacts({ ifname: 'vxlan0', flags: ['UP'], mtu: 8951, linkinfo: { info_kind: 'vxlan', info_data: { id: 1, port: 4789, link: 'eth0' } } });
const vxlan1: LinkFacts = toLinkFacts({ ifname: 'vxlan1', flags: ['UP'], mtu: 8951, linkinfo: { info_kind: 'vxlan', info_data: { id: 2, port: 4789, link: 'eth0' } } });
function sample(vnis: Array<[number, number]>, extra: Partial<Sample> = {}): Sample {
  const total = vnis.reduce((a, [, n]) => a + n, 0);
  return { device: 'eth0', port: 4789, seconds: 3, datagrams: total, vnis: new Map(vnis), notVxlan: 0, truncated: 0, largestInnerIp: 1500, kernelDrops: 0, flows: new FlowSample(80).summary(), ...extra };
}

test('a VNI mismatch names both VNIs and the fix', () => {
  const out = judgeSample(sample([[7, 120]]), [vxlan0], [vxlan0], 9001);
  const vni = out.find((c) => c.name === 'vni' && c.status === 'error')!;
  assert.match(vni.message, /mirror session uses VNI 7, vxlan0 has VNI 1/);
  assert.match(vni.fix!, /vxlan-up\.sh --vni 7 --name vxlan0 --dev eth0/);
  assert.ok(out.some((c) => c.status === 'warning' && /vxlan0 has VNI 1 but no datagram with VNI 1/.test(c.message)));
  assert.match(formatCheck(vni), /^error +vni: mirror session uses VNI 7.* — fix: /);
});

test('nothing arriving points at security groups, NACLs and the session filter', () => {
  const out = judgeSample(sample([]), [vxlan0], [vxlan0], 9001);
  assert.equal(out.length, 1);
  assert.equal(out[0].status, 'error');
  assert.match(out[0].message, /no VXLAN datagrams arrived on eth0/);
  for (const w of [/UDP 4789/, /security group/, /network ACLs/, /filter/]) assert.match(out[0].fix!, w);
});

test('matching VNIs are ok; a VNI decapsulated by an interface we do not capture is a warning', () => {
  const ok = judgeSample(sample([[1, 50]]), [vxlan0], [vxlan0], 9001);
  assert.deepEqual(ok.filter((c) => c.status !== 'ok'), []);
  assert.ok(ok.some((c) => /VNI 1, vxlan0 has VNI 1: they match/.test(c.message)));
  const two = judgeSample(sample([[1, 50], [2, 10]]), [vxlan0, vxlan1], [vxlan0], 9001);
  assert.ok(two.some((c) => c.status === 'warning' && /VNI 2, decapsulated by vxlan1/.test(c.message) && c.fix === 'add --interface vxlan1'));
});

test('truncated packets are reported with the MTU', () => {
  const out = judgeSample(sample([[1, 50]], { truncated: 5 }), [vxlan0], [vxlan0], 1500);
  const t = out.find((c) => c.name === 'truncation eth0')!;
  assert.equal(t.status, 'warning');
  assert.match(t.message, /5 of 50 .* MTU 1500/);
});

test('CAP_NET_RAW is read from CapEff', () => {
  assert.equal(hasNetRaw('CapEff:\t0000000000002000\n'), true);
  assert.equal(hasNetRaw('CapEff:\t0000000000000000\n'), false);
  assert.equal(hasNetRaw('CapEff:\t000001fffeffffff\n'), true);
});

test('an unreachable destination is an error with a fix', async () => {
  const c = await checkDestination('http://127.0.0.1:1', 1000);
  assert.equal(c.status, 'error');
  assert.match(c.message, /ECONNREFUSED/);
});

/** A ClientHello's first bytes as OpenSSL sends them: handshake record, TLS 1.0 record version. */
const HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), Buffer.alloc(40, 9)]);

/** One connection on port `port` from client port `cport`: SYN, SYN-ACK, first payload, answer. */
function connection(f: FlowSample, cport: number, payload: Buffer | string, dirs: 'both' | 'up' | 'down' = 'both', port = 80): void {
  const up = (flags: number, p?: Buffer | string) => buildFrame({ src: '10.0.1.5', dst: '10.0.1.2', sport: cport, dport: port, seq: 1, ack: 1, flags, payload: p });
  const down = (flags: number, p?: string) => buildFrame({ src: '10.0.1.2', dst: '10.0.1.5', sport: port, dport: cport, seq: 1, ack: 1, flags, payload: p });
  const frames = [];
  if (dirs !== 'down') frames.push(up(TCP_SYN), up(TCP_ACK, payload));
  if (dirs !== 'up') frames.push(down(TCP_SYN | TCP_ACK), down(TCP_ACK, 'HTTP/1.1 200 OK\r\n\r\n'));
  for (const fr of frames) f.note(fr, 0, fr.length);
}

test('doctor names TLS on the service port, with what to mirror instead', () => {
  const f = new FlowSample(443);
  for (let i = 0; i < 4; i++) connection(f, 50000 + i, HELLO, 'both', 443);
  const s = f.summary();
  assert.deepEqual({ connections: s.connections, tls: s.tls, http: s.http }, { connections: 4, tls: 4, http: 0 });
  const tls = judgeFlows(s, false).find((c) => c.name === 'tls port 443')!;
  assert.equal(tls.status, 'error', 'nothing on the port can be replayed');
  assert.match(tls.message, /port 443 carries TLS: 4 of 4 connections/);
  assert.match(tls.fix!, /plaintext hop.*load balancer.*targets/);
  // Some plain HTTP beside it: a warning.
  connection(f, 50010, 'GET / HTTP/1.1\r\n\r\n', 'both', 443);
  assert.equal(judgeFlows(f.summary(), false).find((c) => c.name === 'tls port 443')!.status, 'warning');
});

test('plain HTTP is ok; no connection on the port names the ports that were seen', () => {
  const f = new FlowSample(80);
  connection(f, 40000, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  const out = judgeFlows(f.summary(), false);
  assert.deepEqual(out.map((c) => [c.status, c.name]), [['ok', 'port 80']]);
  const g = new FlowSample(8080);
  connection(g, 40000, 'GET / HTTP/1.1\r\n\r\n');
  const none = judgeFlows(g.summary(), true);
  assert.equal(none.length, 1);
  assert.match(none[0].message, /no TCP connection on port 8080.*other ports seen: 80 \(4 segments\)/);
  assert.match(none[0].fix!, /--filter-request-port 80/);
});

test('with --compare, connections seen in one direction only are reported with the fix', () => {
  const split = new FlowSample(80);
  for (let i = 0; i < 6; i++) connection(split, 41000 + i, 'GET / HTTP/1.1\r\n\r\n', 'up');
  connection(split, 42000, 'GET / HTTP/1.1\r\n\r\n', 'both');
  const d = judgeFlows(split.summary(), true).find((c) => c.name === 'directions')!;
  assert.equal(d.status, 'warning');
  assert.match(d.message, /6 of 7 connections on port 80 arrive in one direction only \(6 with requests and no answers, 0 with answers and no requests\)/);
  assert.match(d.fix!, /mirror both directions.*keep each mirror source on one adapter/);
  assert.equal(judgeFlows(split.summary(), false).find((c) => c.name === 'directions'), undefined, 'not judged without --compare');
  const answersOnly = new FlowSample(80);
  for (let i = 0; i < 3; i++) connection(answersOnly, 43000 + i, '', 'down');
  assert.match(judgeFlows(answersOnly.summary(), true).find((c) => c.name === 'directions')!.message, /0 with requests and no answers, 3 with answers and no requests/);
  const both = new FlowSample(80);
  for (let i = 0; i < 3; i++) connection(both, 44000 + i, 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(judgeFlows(both.summary(), true).find((c) => c.name === 'directions')!.status, 'ok');
});

function tunnels(vnis: Array<[number, number]>, extra: Partial<TunnelSample> = {}): TunnelSample {
  return { device: 'eth0', seconds: 2, vnis: new Map(vnis), malformed: 0, truncated: 0, kernelDrops: 0, flows: new FlowSample(80).summary(), ...extra };
}

test('--encap-interface: nothing tunnelled arriving names both tunnel ports and the load balancers', () => {
  const out = judgeTunnels(tunnels([[1, 0]], { malformed: 3 }), [1], 9001);
  assert.equal(out.length, 1);
  assert.equal(out[0].status, 'error');
  assert.match(out[0].message, /no tunnelled frames arrived on eth0 \(UDP 4789 VXLAN, 6081 GENEVE\) in 2 s \(3 malformed tunnel headers\)/);
  assert.match(out[0].fix!, /UDP 4789.*UDP 6081 \(Gateway Load Balancer target\)/);
});

test('--encap-interface with --vni: a session not kept and a kept one that never arrives are warnings; a kept one is ok', () => {
  const out = judgeTunnels(tunnels([[2, 20], [1, 100], [3, 0]]), [1, 3], 9001);
  const text = out.map(formatCheck).join('\n');
  assert.match(text, /^ok +traffic eth0: 120 tunnelled frames arrived .*: VNI 1 \(100\), VNI 2 \(20\)$/m);
  assert.match(text, /^ok +vni: mirror session VNI 1 arrives \(100 frames\) and is kept by --vni 1$/m);
  assert.match(text, /^warning vni: VNI 2 arrives \(20 frames\) but is not in --vni 1,3: counted as skipped \(other_vni\), never replayed — fix: add --vni 2/m);
  assert.match(text, /^warning vni: --vni 3 is kept but no frame with VNI 3 arrived/m);
  assert.match(text, /^ok +truncation eth0: no truncated segments$/m);
});

test('--encap-interface without --vni keeps every session; truncation and malformed headers are warnings', () => {
  const out = judgeTunnels(tunnels([[7, 5]], { truncated: 2, malformed: 1 }), [], 1500);
  const text = out.map(formatCheck).join('\n');
  assert.match(text, /^ok +vni: every VNI is replayed \(no --vni\): 7; connections are told apart by VNI$/m);
  assert.match(text, /^warning truncation eth0: 2 mirrored segments arrived cut short \(eth0 MTU 1500\)/m);
  assert.match(text, /^warning traffic eth0: 1 datagrams to a tunnel port had malformed headers/m);
  assert.equal(out.filter((c) => c.status === 'error').length, 0);
});
