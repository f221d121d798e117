/**
 * Destinations that misbehave on purpose, next to a healthy one. In each case the healthy
 * destination gets every request, the queue stays bounded, and the counters say what happened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Replayer, type ReplayOptions } from '../../src/replay/replayer.js';
import { NO_FILTERS } from '../../src/replay/filters.js';
import { NO_REWRITES } from '../../src/replay/rewrite.js';
import type { DropReason, ReplayObserver } from '../../src/replay/outcome.js';
import type { HttpRequest } from '../../src/http/types.js';

class Outcomes implements ReplayObserver {
  perDest = new Map<string, number>();
  statuses = new Map<string, number>();
  codes = new Map<string, number>();
  dropped(reason: DropReason, count = 1, destination?: string) {
    const k = `${destination ?? '-'} ${reason}`;
    this.perDest.set(k, (this.perDest.get(k) ?? 0) + count);
  }
  replayed(d: string, status: number) {
    const k = `${d} ${Math.floor(status / 100)}xx`;
    this.statuses.set(k, (this.statuses.get(k) ?? 0) + 1);
  }
  error(d: string, code: string) {
    this.codes.set(`${d} ${code}`, (this.codes.get(`${d} ${code}`) ?? 0) + 1);
  }
  altered() {}
  get(m: Map<string, number>, k: string) {
    return m.get(k) ?? 0;
  }
}

const flow = { clientAddr: '192.0.2.1', clientPort: 1234, serverAddr: '10.9.9.9', serverPort: 80, ipVersion: 4 };
const req = (i: number): HttpRequest => ({ method: 'POST', target: `/f/${i}`, minorVersion: 1, headers: ['Host', 'prod', 'Content-Length', '1024'], body: Buffer.alloc(1024, 97), chunked: false, trailers: [] });

/** A raw TCP server with a misbehaviour; tracks its sockets so the test can close them. */
async function faulty(kind: 'blackhole' | 'slow' | 'reset-mid-response' | '503', port = 0) {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => {
      if (!d.includes('\r\n\r\n')) return;
      if (kind === 'blackhole') return;
      if (kind === 'slow') {
        const t = setTimeout(() => s.writable && s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 10_000);
        timers.add(t);
      } else if (kind === 'reset-mid-response') {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
        setImmediate(() => s.resetAndDestroy());
      } else s.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    }),
  };
}

async function healthy(port = 0) {
  let n = 0;
  const srv = http.createServer((q, r) => {
    q.resume();
    q.on('end', () => {
      n++;
      r.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, count: () => n, close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
}

// The healthy destination keeps a deep queue (a busy machine must not make it drop); the faulty
// one gets small limits in its URL, as an operator would give a flaky test environment.
function options(destinations: string[]): ReplayOptions {
  return { destinations, keepHost: false, sampling: { percentage: 100, by: 'random' }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES, maxConcurrency: 8, maxQueue: 100_000, maxQueueBytes: 1 << 30, timeoutMs: 10_000 };
}
const LIMITS = '?max-queue=200&max-queue-bytes=1MiB&timeout=400ms';

/** Offers n requests in bursts (capture never waits), then drains. */
async function offer(r: Replayer, n: number, maxQueueSeen: { v: number }) {
  for (let i = 0; i < n; i++) {
    r.submit(req(i), flow);
    maxQueueSeen.v = Math.max(maxQueueSeen.v, r.destinations[1].queueDepth);
    if (i % 50 === 49) await new Promise((res) => setTimeout(res, 20));
  }
}

for (const kind of ['refused', 'blackhole', 'slow', 'reset-mid-response', '503'] as const) {
  test(`${kind} destination next to a healthy one`, async () => {
    const good = await healthy();
    const bad = kind === 'refused' ? null : await faulty(kind);
    const badUrl = bad?.url ?? 'http://127.0.0.1:9';
    const out = new Outcomes();
    const r = new Replayer(options([good.url, badUrl + LIMITS]), out);
    const maxQ = { v: 0 };
    try {
      await offer(r, 2000, maxQ);
      await r.drain(15_000);
    } finally {
      await bad?.close();
      await good.close();
    }
    const by = (reason: string) => out.get(out.perDest, `${badUrl} ${reason}`);
    console.log(`${kind}: healthy got ${good.count()}/2000; faulty: connect_error ${by('connect_error')}, timeout ${by('timeout')}, queue_full ${by('queue_full')}, upstream_error ${by('upstream_error')}, shutdown ${by('shutdown')}, 2xx ${out.get(out.statuses, `${badUrl} 2xx`)}, 5xx ${out.get(out.statuses, `${badUrl} 5xx`)}; max queue ${maxQ.v}; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(good.count(), 2000, 'the healthy destination got every request');
    assert.ok(maxQ.v <= 200, `queue bounded: ${maxQ.v}`);
    const lost = (reason: string) => out.get(out.perDest, `${badUrl} ${reason}`);
    const accounted = lost('connect_error') + lost('timeout') + lost('queue_full') + lost('upstream_error') + lost('shutdown') + out.get(out.statuses, `${badUrl} 2xx`) + out.get(out.statuses, `${badUrl} 5xx`);
    assert.equal(accounted, 2000, 'every request to the faulty destination is accounted for');
    if (kind === 'refused') assert.equal(lost('connect_error'), 2000);
    if (kind === 'blackhole' || kind === 'slow') {
      assert.ok(lost('timeout') > 0, 'timeouts counted');
      assert.ok(lost('queue_full') > 0, 'queue_full counted');
    }
    if (kind === 'reset-mid-response') assert.ok(lost('upstream_error') > 0);
    if (kind === '503') {
      // Answered, so counted by status, never as an error; on a loaded machine some may still
      // meet the faulty destination's small queue full.
      assert.equal(out.get(out.statuses, `${badUrl} 5xx`) + lost('queue_full'), 2000);
      assert.ok(out.get(out.statuses, `${badUrl} 5xx`) > 1000);
      assert.equal(lost('upstream_error') + lost('timeout') + lost('connect_error'), 0);
    }
  });
}

test('a destination that goes away and comes back is replayed to again', async () => {
  const first = await healthy();
  const port = Number(new URL(first.url).port);
  const out = new Outcomes();
  const r = new Replayer(options([first.url]), out);
  let again: Awaited<ReturnType<typeof healthy>> | null = null;
  try {
    for (let i = 0; i < 50; i++) r.submit(req(i), flow);
    await new Promise((res) => setTimeout(res, 300));
    await first.close();
    for (let i = 0; i < 50; i++) r.submit(req(i), flow);
    await new Promise((res) => setTimeout(res, 300));
    // Refused on new connections (then dropped at once while taken as down); a kept-alive
    // socket the server closed fails as upstream_error.
    assert.equal(out.get(out.perDest, `${first.url} connect_error`) + out.get(out.perDest, `${first.url} upstream_error`), 50);
    assert.ok(r.destinations[0].down, 'taken as down after repeated refusals');
    again = await healthy(port);
    // Probe until the backoff has passed and a request gets through (bounded).
    for (let i = 0; i < 100 && again.count() === 0; i++) {
      r.submit(req(i), flow);
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(again.count() > 0, 'came back within the backoff');
    const before = again.count();
    for (let i = 0; i < 50; i++) r.submit(req(i), flow);
    await r.drain(3000);
    assert.equal(first.count(), 50);
    assert.equal(again.count() - before, 50);
  } finally {
    await r.drain(100);
    await again?.close();
  }
});
