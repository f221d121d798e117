/**
 * The hand-off between a capture worker and the main thread, over a real MessageChannel: requests
 * arrive whole and in order (small bodies packed, large ones transferred), drops add up, and past
 * the bound requests are counted as overflow, never queued without limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import type { HttpDropReason, HttpRequest } from '../../src/http/types.js';
import { HANDOFF_MAX_REQUESTS, handoffBudget, HandoffWriter, readBatch, type Batch } from '../../src/pipeline/handoff.js';
import type { FlowInfo } from '../../src/reassemble/stream.js';

const FLOW: FlowInfo = { clientAddr: '10.0.0.1', clientPort: 40000, serverAddr: '10.0.0.2', serverPort: 80, ipVersion: 4 };

function req(i: number, body: Buffer): HttpRequest {
  return { method: 'POST', target: `/r/${i}`, minorVersion: 1, headers: ['Host', 'h', 'X-I', String(i)], body, chunked: i % 2 === 1, trailers: [] };
}

function channel(budget: Int32Array) {
  const { port1, port2 } = new MessageChannel();
  const got: Array<{ req: HttpRequest; flow: FlowInfo }> = [];
  const drops: Array<[HttpDropReason, number, number]> = [];
  let overflow = 0;
  let batches = 0;
  port2.on('message', (b: Batch) => {
    batches++;
    readBatch(b, { request: (r, f) => got.push({ req: r, flow: f }), dropped: (r, n, s) => drops.push([r, n, s]), overflow: (n) => (overflow += n) }, budget);
  });
  const writer = new HandoffWriter((b, transfer) => port1.postMessage(b, transfer), budget);
  return {
    writer,
    got,
    drops,
    overflow: () => overflow,
    batches: () => batches,
    /** Until `done` holds (messages cross threads in their own time on a busy machine), at most 10 s. */
    settle: async (done: () => boolean) => {
      for (const t0 = Date.now(); !done() && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 10));
    },
    close: () => {
      port1.close();
      port2.close();
    },
  };
}

test('handoff: requests arrive whole and in order; large bodies move by transfer; drops add up', async () => {
  const budget = handoffBudget();
  const ch = channel(budget);
  try {
    const large = Buffer.alloc(200_000, 7); // owns its ArrayBuffer: transferred
    const bodies = [Buffer.alloc(0), Buffer.from('small body'), large, Buffer.from('x'.repeat(5000)), Buffer.from('tail')];
    bodies.forEach((b, i) => ch.writer.request(req(i, b), FLOW));
    ch.writer.dropped('http_incomplete', 1, 10);
    ch.writer.dropped('http_incomplete', 2, 5);
    ch.writer.dropped('http_midstream_skipped', 0, 99);
    assert.equal(Atomics.load(budget, 0), bodies.length, 'counted as posted');
    await ch.settle(() => ch.got.length === bodies.length && ch.drops.length === 2);
    assert.equal(ch.batches(), 1, 'one message for the lot');
    assert.equal(large.buffer.byteLength, 0, 'the large body was transferred, not copied');
    assert.equal(ch.got.length, bodies.length);
    ch.got.forEach(({ req: r, flow }, i) => {
      assert.equal(r.target, `/r/${i}`);
      assert.deepEqual(r.headers, ['Host', 'h', 'X-I', String(i)]);
      assert.equal(r.chunked, i % 2 === 1);
      assert.ok(Buffer.isBuffer(r.body));
      assert.deepEqual(r.body, i === 2 ? Buffer.alloc(200_000, 7) : bodies[i]);
      assert.deepEqual(flow, FLOW);
    });
    assert.deepEqual(ch.drops.sort(), [['http_incomplete', 3, 15], ['http_midstream_skipped', 0, 99]]);
    assert.equal(Atomics.load(budget, 0), 0, 'the bound is freed once submitted');
    assert.equal(Atomics.load(budget, 1), 0);
  } finally {
    ch.close();
  }
});

test('handoff: an HTTP/2 request stays HTTP/2 across threads (its stream id, scheme and :authority)', async () => {
  const budget = handoffBudget();
  const ch = channel(budget);
  try {
    ch.writer.request({ ...req(0, Buffer.from('grpc')), authority: 'svc:50051', h2: { scheme: 'http', streamId: 7 } }, FLOW);
    ch.writer.request(req(1, Buffer.alloc(0)), FLOW);
    await ch.settle(() => ch.got.length === 2);
    assert.deepEqual(ch.got[0].req.h2, { scheme: 'http', streamId: 7 });
    assert.equal(ch.got[0].req.authority, 'svc:50051');
    assert.equal(ch.got[1].req.h2, undefined);
  } finally {
    ch.close();
  }
});

test('handoff: past the bound, requests are counted as overflow instead of queued', async () => {
  const budget = handoffBudget();
  Atomics.store(budget, 0, HANDOFF_MAX_REQUESTS - 3); // the main thread is behind
  const ch = channel(budget);
  try {
    for (let i = 0; i < 10; i++) ch.writer.request(req(i, Buffer.from('b')), FLOW);
    ch.writer.flush();
    await ch.settle(() => ch.got.length + ch.overflow() === 10);
    assert.equal(ch.got.length, 3);
    assert.equal(ch.overflow(), 7);
    assert.equal(ch.got.length + ch.overflow(), 10, 'every request handed over or counted');
    assert.equal(Atomics.load(budget, 0), HANDOFF_MAX_REQUESTS - 3);
  } finally {
    ch.close();
  }
});

test('handoff: more than a batch holds goes out in several messages, none lost', async () => {
  const budget = handoffBudget();
  const ch = channel(budget);
  try {
    for (let i = 0; i < 2000; i++) ch.writer.request(req(i, Buffer.from(`body ${i}`)), FLOW);
    await ch.settle(() => ch.got.length === 2000);
    assert.ok(ch.batches() >= 4);
    assert.deepEqual(ch.got.map((g) => g.req.body.toString()), Array.from({ length: 2000 }, (_, i) => `body ${i}`));
  } finally {
    ch.close();
  }
});
