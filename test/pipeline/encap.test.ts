/**
 * Decapsulation through the whole assembly: a pcap captured on an adapter's own interface (the
 * tunnels as they arrived) read with --pcap-encap, two mirror sessions carrying the very same
 * inner connection kept apart by their VNI, and the per-VNI metric.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_HTTP_LIMITS, type HttpRequest } from '../../src/http/types.js';
import { Metrics } from '../../src/metrics/registry.js';
import { createCapture, type CaptureSink } from '../../src/pipeline/capture.js';
import type { FlowInfo } from '../../src/reassemble/stream.js';
import { buildFrame, pcapFile, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';
import { gwlbMirrorFrame } from '../fixtures/geneve.js';
import { vxlanFrame, vxlanPayload } from '../fixtures/vxlan.js';

/** The same client, ports and sequence numbers every time: only the target differs. */
function connection(target: string): Buffer[] {
  const c = { src: '10.99.0.1', dst: '10.213.1.2', sport: 40000, dport: 80 };
  const req = `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`;
  return [
    buildFrame({ ...c, seq: 1000, flags: TCP_SYN }),
    buildFrame({ ...c, seq: 1001, ack: 1, flags: TCP_ACK | TCP_PSH, payload: req }),
    buildFrame({ ...c, seq: 1001 + req.length, ack: 1, flags: TCP_ACK | TCP_FIN }),
  ];
}

/** Frame i of each session in turn, so the sessions' segments interleave. */
function interleave(...sessions: Buffer[][]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < Math.max(...sessions.map((s) => s.length)); i++) for (const s of sessions) if (s[i]) out.push(s[i]);
  return out;
}

async function run(frames: Buffer[], pcapEncap: boolean, vnis: number[] = []) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mr-encap-')), 'eth0.pcap');
  fs.writeFileSync(file, pcapFile(frames));
  const requests: Array<{ req: HttpRequest; flow: FlowInfo }> = [];
  const sink: CaptureSink = { request: (req, flow) => (requests.push({ req, flow }), true), dropped: () => {}, overflow: () => {} };
  const opts = { pcap: file, pcapEncap, interfaces: [], workers: 1, speed: 0, loops: 1, ring: { ringMiB: 4, blockKiB: 128, retireMs: 100 }, stages: { table: { port: 80 }, limits: DEFAULT_HTTP_LIMITS, encap: { vnis } } };
  const capture = createCapture(opts, sink, null);
  const errors = await capture.run();
  capture.close();
  fs.rmSync(path.dirname(file), { recursive: true });
  assert.deepEqual(errors, [null]);
  return { requests, capture };
}

const vx = (vni: number, target: string) => connection(target).map((inner) => vxlanFrame({ vni, inner }));
const gwlb = (vni: number, target: string) => connection(target).map((inner) => gwlbMirrorFrame(vxlanPayload(vni, inner)));

test('--pcap-encap: VXLAN of two VNIs and GWLB GENEVE carrying one inner 5-tuple give three requests, each on its VNI', async () => {
  const { requests, capture } = await run(interleave(vx(1, '/vni1'), vx(2, '/vni2'), gwlb(3, '/gwlb3')), true);
  assert.deepEqual(requests.map((r) => [r.req.target, r.flow.vni]).sort(), [['/gwlb3', 3], ['/vni1', 1], ['/vni2', 2]]);
  const m = new Metrics(['http://test.invalid'], { ...capture.probe, destinations: () => [] }, { defaultMetrics: false });
  const text = await m.registry.metrics();
  for (const vni of [1, 2, 3]) assert.match(text, new RegExp(`mirror_replay_decap_frames_total\\{vni="${vni}"\\} 3\\n`));
  assert.equal(capture.probe.decodeSkips().reduce((a, b) => a + b, 0), 0);
});

test('--vni 2: only that session is replayed; the others are counted other_vni', async () => {
  const { requests, capture } = await run(interleave(vx(1, '/vni1'), vx(2, '/vni2'), gwlb(3, '/gwlb3')), true, [2]);
  assert.deepEqual(requests.map((r) => r.req.target), ['/vni2']);
  const m = new Metrics(['http://test.invalid'], { ...capture.probe, destinations: () => [] }, { defaultMetrics: false });
  assert.equal(await m.total('mirror_replay_decode_skipped_total', { reason: 'other_vni' }), 6);
});

test('without --pcap-encap the same file yields nothing decapsulated (UDP counted not_tcp)', async () => {
  const { requests, capture } = await run(vx(1, '/vni1'), false);
  assert.equal(requests.length, 0);
  const m = new Metrics(['http://test.invalid'], { ...capture.probe, destinations: () => [] }, { defaultMetrics: false });
  assert.equal(await m.total('mirror_replay_decode_skipped_total', { reason: 'not_tcp' }), 3);
});
