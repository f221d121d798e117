/**
 * The one pipeline assembly: real frames through the real decoder, flow table and request parser,
 * out to a RequestSink, as the main thread and every capture worker run it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { DEFAULT_HTTP_LIMITS, type HttpDropReason, type HttpRequest } from '../../src/http/types.js';
import { Stages, ThreadCapture, type RequestSink } from '../../src/pipeline/stages.js';
import type { FlowInfo } from '../../src/reassemble/stream.js';
import { buildFrame, pcapFile, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../fixtures/frames.js';

const OPTS = { table: { port: 80 }, limits: DEFAULT_HTTP_LIMITS };

function recorder() {
  const requests: Array<{ req: HttpRequest; flow: FlowInfo }> = [];
  const drops: Array<{ reason: HttpDropReason; requests: number; flow?: FlowInfo }> = [];
  const sink: RequestSink = {
    request: (req, flow) => (requests.push({ req, flow }), true),
    dropped: (reason, n, _skipped, flow) => {
      if (n > 0) drops.push({ reason, requests: n, flow });
    },
  };
  return { sink, requests, drops };
}

/** One connection: SYN, then `payloads` in order, then FIN when `fin`. */
function connection(sport: number, payloads: string[], fin: boolean): Buffer[] {
  const c = { src: '10.1.0.7', dst: '10.0.0.80', sport, dport: 80 };
  let seq = 1000;
  const frames = [buildFrame({ ...c, seq, flags: TCP_SYN })];
  seq++;
  for (const p of payloads) {
    frames.push(buildFrame({ ...c, seq, ack: 1, flags: TCP_ACK | TCP_PSH, payload: p }));
    seq += p.length;
  }
  if (fin) frames.push(buildFrame({ ...c, seq, ack: 1, flags: TCP_ACK | TCP_FIN }));
  return frames;
}

test('Stages: frames in, requests out with the flow they came on; a request cut off at close is counted, not lost', () => {
  const r = recorder();
  const stages = new Stages(OPTS, r.sink);
  const onFrame = stages.frameHandler();
  const frames = [
    ...connection(40001, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Le', 'ngth: 3\r\n\r\nabc'], true),
    ...connection(40002, ['GET /partial HTTP/1.1\r\nHost: x\r\n'], false),
  ];
  for (const f of frames) onFrame(f, 0, f.length, f.length);
  assert.deepEqual(r.requests.map((x) => `${x.req.method} ${x.req.target} ${x.req.body.toString()}`), ['GET /a ', 'POST /b abc']);
  assert.deepEqual(r.requests[1].flow, { clientAddr: '10.1.0.7', clientPort: 40001, serverAddr: '10.0.0.80', serverPort: 80, ipVersion: 4 });
  assert.equal(stages.counters().openFlows, 1);
  stages.close();
  assert.deepEqual(r.drops.map((d) => [d.reason, d.requests, d.flow?.clientPort]), [['http_incomplete', 1, 40002]]);
  assert.equal(stages.counters().openFlows, 0);
});

test('Stages: each source has its own decoder; counters are summed over them', () => {
  const r = recorder();
  const stages = new Stages(OPTS, r.sink);
  const a = stages.frameHandler();
  const b = stages.frameHandler();
  const runt = Buffer.alloc(10);
  a(runt, 0, runt.length, runt.length);
  b(runt, 0, runt.length, runt.length);
  const total = stages.counters().anomalies.reduce((x, y) => x + y, 0);
  assert.equal(total, 2);
});

test('ThreadCapture over a pcap file: every request out, counters through the probe, the run ends clean', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-stages-'));
  try {
    const frames = Array.from({ length: 20 }, (_, i) => connection(41000 + i, [`GET /r/${i} HTTP/1.1\r\nHost: x\r\n\r\n`], true)).flat();
    const file = path.join(dir, 'in.pcap');
    fs.writeFileSync(file, pcapFile(frames));
    const r = recorder();
    const capture = new ThreadCapture([new PcapFileSource(file)], new Stages(OPTS, r.sink));
    const ended = capture.run();
    assert.equal(await capture.bound(), true);
    assert.deepEqual(await ended, [null]);
    capture.close();
    assert.equal(r.requests.length, 20);
    assert.deepEqual(new Set(r.requests.map((x) => x.req.target)).size, 20);
    assert.deepEqual(capture.probe.capture().map((c) => [c.interface, c.packets]), [[file, frames.length]]);
    assert.equal(capture.probe.flowsOpen(), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ThreadCapture: a source that cannot open ends the run with its error', async () => {
  const r = recorder();
  const capture = new ThreadCapture([new PcapFileSource('/nonexistent/mr-missing.pcap')], new Stages(OPTS, r.sink));
  const [err] = await capture.run();
  capture.close();
  assert.equal((err as { code?: string } | null)?.code, 'MR_CAPTURE');
});

test('Stages: an HTTP/2 connection (curl --http2-prior-knowledge, captured on loopback) gives its request with h2 set; one picked up midstream is http2_midstream', () => {
  const c2s = fs.readFileSync(path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '../../../test/fixtures/h2/curl.c2s.bin')).toString('latin1');
  const pieces: string[] = [];
  for (let i = 0; i < c2s.length; i += 40) pieces.push(c2s.slice(i, i + 40));
  const r = recorder();
  const stages = new Stages(OPTS, r.sink);
  const onFrame = stages.frameHandler();
  for (const f of connection(40003, pieces, true)) onFrame(f, 0, f.length, f.length);
  assert.deepEqual(r.requests.map((x) => [x.req.method, x.req.target, x.req.h2?.streamId, x.req.body.toString()]), [['POST', '/c', 1, 'hello curl']]);
  assert.equal(r.drops.length, 0);
  // The same connection without its SYN and first 30 bytes: midstream.
  const mid = connection(40004, [c2s.slice(30)], true).slice(1);
  for (const f of mid) onFrame(f, 0, f.length, f.length);
  stages.close();
  assert.equal(r.requests.length, 1);
  assert.deepEqual(r.drops.map((d) => [d.reason, d.flow?.clientPort]), [['http2_midstream', 40004]]);
});
