/**
 * Fragmented requests through the whole daemon (--pcap: no kernel defragments these frames):
 * each must be replayed exactly as if its segments had never been cut, and what cannot be
 * reassembled is counted under its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon.js';
import { ANOMALIES, SKIPS } from '../../src/decode/anomalies.js';
import { buildFrame, fragmentFrame, pcapFile, splitFrame, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type FrameSpec } from '../fixtures/frames.js';

interface Got {
  method: string;
  url: string;
  body: string;
}

async function recordingServer() {
  const got: Got[] = [];
  const srv = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      got.push({ method: req.method!, url: req.url!, body: Buffer.concat(parts).toString('latin1') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, close: () => srv.close() };
}

function post(target: string, size: number): { request: string; want: Got } {
  const body = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  return { request: `POST ${target} HTTP/1.1\r\nHost: prod\r\nContent-Length: ${size}\r\n\r\n${body}`, want: { method: 'POST', url: target, body } };
}

/** SYN, the request in one segment (cut by `cut` into frames), FIN. */
function connection(c: Omit<FrameSpec, 'seq' | 'dport'>, request: string, cut: (f: Buffer) => Buffer[]): Buffer[] {
  const isn = 1000;
  const spec = { ...c, dport: 80, ack: 1 };
  return [
    buildFrame({ ...spec, seq: isn, flags: TCP_SYN }),
    ...cut(buildFrame({ ...spec, seq: isn + 1, flags: TCP_ACK | TCP_PSH, payload: request })),
    buildFrame({ ...spec, seq: isn + 1 + request.length, flags: TCP_ACK | TCP_FIN }),
  ];
}

test('fragmented and atomic-fragment requests are replayed as sent; conflicts and losses are counted', async () => {
  const v4 = post('/v4-fragmented', 5000);
  const v6 = post('/v6-fragmented', 4000);
  const atomic = post('/v6-atomic', 10);
  const retried = post('/v4-conflict-then-retransmitted', 3000);
  const lost = post('/v4-fragment-lost', 3000);
  const c4 = { src: '10.1.0.1', dst: '10.2.0.1', sport: 41001 };
  const c6 = { src: 'fd00::10', dst: 'fd00::20', sport: 41002, vlans: [7] };
  const frames = [
    ...connection(c4, v4.request, (f) => splitFrame(f, 1480).reverse()),
    ...connection(c6, v6.request, (f) => {
      const fr = splitFrame(f, 1232);
      return [fr[1], fr[0], fr[1], ...fr.slice(2)];
    }),
    ...connection({ ...c6, sport: 41003 }, atomic.request, () => [buildFrame({ ...c6, sport: 41003, dport: 80, ack: 1, seq: 1001, payload: atomic.request, ipv6Fragment: { offset: 0, more: false } })]),
    // The server's OS could not know which copy to keep either; TCP retransmits, unfragmented.
    ...connection({ ...c4, sport: 41004 }, retried.request, (f) => {
      const [a, b] = fragmentFrame(f, [{ start: 0, end: 2000 }, { start: 1000, end: retried.request.length + 20, data: Buffer.alloc(retried.request.length + 20 - 1000, 0x5a) }], 9);
      return [a, b, f];
    }),
    ...connection({ ...c4, sport: 41005 }, lost.request, (f) => splitFrame(f, 1480, 10).slice(1)),
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-frag-'));
  const pcap = path.join(dir, 'fragments.pcap');
  fs.writeFileSync(pcap, pcapFile(frames));
  const s = await recordingServer();
  try {
    const cfg: Config = { ...DEFAULTS, destinations: [s.url], pcap, percentageByHeader: undefined, markHeader: undefined, metricsPort: 0, logLevel: 'silent' };
    const d = await startDaemon(cfg, pino({ level: 'silent' }));
    assert.equal(await d.done, 0);
    const byUrl = (a: Got, b: Got) => a.url.localeCompare(b.url);
    assert.deepEqual([...s.got].sort(byUrl), [v4.want, v6.want, atomic.want, retried.want].sort(byUrl));
    const m = d.metrics;
    const anomaly = (a: string) => m.total('mirror_replay_decode_anomalies_total', { anomaly: a });
    const skip = (r: string) => m.total('mirror_replay_decode_skipped_total', { reason: r });
    assert.equal(await anomaly('ipv6_atomic_fragment'), 1);
    assert.equal(await anomaly('fragment_overlap'), 1);
    assert.equal(await anomaly('fragment_incomplete'), 1, 'the datagram missing its first fragment, at the end of the pcap');
    assert.equal(await skip('fragment_duplicate'), 1);
    // 4 + 3 held before completion, 1 before the conflict, 2 that never completed.
    assert.equal(await skip('fragment_held'), 3 + 3 + 1 + 2);
    assert.equal(await m.total('mirror_replay_requests_replayed_total'), 4);
    const text = await m.registry.metrics();
    for (const a of ANOMALIES) assert.match(text, new RegExp(`mirror_replay_decode_anomalies_total\\{anomaly="${a}"\\} \\d`), a);
    for (const r of SKIPS) assert.match(text, new RegExp(`mirror_replay_decode_skipped_total\\{reason="${r}"\\} \\d`), r);
  } finally {
    s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
