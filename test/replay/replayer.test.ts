import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Replayer, type ReplayOptions } from '../../src/replay/replayer.js';
import { NO_FILTERS } from '../../src/replay/filters.js';
import { NO_REWRITES } from '../../src/replay/rewrite.js';
import type { DropReason, ReplayObserver } from '../../src/replay/outcome.js';
import type { HttpRequest } from '../../src/http/types.js';

class Outcomes implements ReplayObserver {
  drops: Record<string, number> = {};
  perDest: Record<string, number> = {};
  replayedBy: Record<string, number> = {};
  dropped(reason: DropReason, count = 1, destination?: string) {
    this.drops[reason] = (this.drops[reason] ?? 0) + count;
    if (destination) this.perDest[`${destination} ${reason}`] = (this.perDest[`${destination} ${reason}`] ?? 0) + count;
  }
  replayed(d: string) {
    this.replayedBy[d] = (this.replayedBy[d] ?? 0) + 1;
  }
  error() {}
  altered() {}
}

const flow = { clientAddr: '192.0.2.1', clientPort: 1234, serverAddr: '10.9.9.9', serverPort: 80, ipVersion: 4 };
const req = (method: string, target: string, headers: string[]): HttpRequest => ({ method, target, minorVersion: 1, headers: ['Host', 'prod', ...headers], body: Buffer.alloc(0), chunked: false, trailers: [] });

async function server() {
  const got: Array<{ method: string; url: string; raw: string[] }> = [];
  const s = http.createServer((q, r) => {
    got.push({ method: q.method!, url: q.url!, raw: q.rawHeaders });
    q.resume();
    q.on('end', () => r.end('ok'));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => s.close() };
}

function options(destinations: string[], extra: Partial<ReplayOptions> = {}): ReplayOptions {
  return { destinations, keepHost: false, sampling: { percentage: 100, by: 'random' }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES, maxConcurrency: 8, maxQueue: 1000, maxQueueBytes: 1 << 20, timeoutMs: 2000, ...extra };
}

test('the chain in order: loop, filter, sampling; rewrites and marker reach every destination', async () => {
  const a = await server();
  const b = await server();
  const out = new Outcomes();
  const r = new Replayer(
    options([a.url, b.url], {
      filters: { ...NO_FILTERS, disallowMethods: ['DELETE'] },
      rewrites: { setHeaders: ['X-Env: test'], removeHeaders: ['Authorization'], rewriteUrls: ['^/old/:/new/'] },
      markHeader: 'X-Mirror-Replay',
    }),
    out,
  );
  r.submit(req('GET', '/old/a?q=1', ['Authorization', 'Bearer secret', 'X-Env', 'prod']), flow);
  r.submit(req('DELETE', '/x', []), flow);
  r.submit(req('GET', '/y', ['X-Mirror-Replay', '1']), flow);
  await r.drain(2000);
  a.close();
  b.close();
  assert.deepEqual(out.drops, { filtered: 1, loop: 1 });
  for (const s of [a, b]) {
    assert.equal(s.got.length, 1);
    assert.equal(s.got[0].url, '/new/a?q=1');
    assert.ok(!s.got[0].raw.some((h) => h.toLowerCase() === 'authorization'));
    assert.ok(!s.got[0].raw.includes('Bearer secret'));
    const i = s.got[0].raw.indexOf('X-Env');
    assert.equal(s.got[0].raw[i + 1], 'test');
    assert.equal(s.got[0].raw[s.got[0].raw.indexOf('X-Mirror-Replay') + 1], '1');
  }
});

test('one destination refusing, one healthy: the healthy one gets everything, refusals counted per destination', async () => {
  const ok = await server();
  const out = new Outcomes();
  const refused = 'http://127.0.0.1:9';
  const r = new Replayer(options([ok.url, refused]), out);
  for (let i = 0; i < 300; i++) r.submit(req('GET', `/r/${i}`, []), flow);
  await r.drain(5000);
  ok.close();
  assert.equal(ok.got.length, 300);
  assert.equal(out.perDest[`${refused} connect_error`], 300);
});

test('a rewrite that puts a space in the target is dropped as invalid_for_replay, not sent', async () => {
  const s = await server();
  const out = new Outcomes();
  const r = new Replayer(options([s.url], { rewrites: { setHeaders: [], removeHeaders: [], rewriteUrls: ['^/a:/b c'] } }), out);
  r.submit(req('GET', '/a', []), flow);
  r.submit(req('GET', '/ok', []), flow);
  await r.drain(2000);
  s.close();
  assert.equal(out.drops.invalid_for_replay, 1);
  assert.deepEqual(s.got.map((g) => g.url), ['/ok']);
});

test('--rate caps what is replayed; the excess is rate_limited', async () => {
  const s = await server();
  const out = new Outcomes();
  const r = new Replayer(options([s.url], { rate: 50 }), out);
  for (let i = 0; i < 500; i++) r.submit(req('GET', '/', []), flow);
  await r.drain(3000);
  s.close();
  assert.ok(s.got.length >= 50 && s.got.length <= 55, String(s.got.length));
  assert.equal(out.drops.rate_limited, 500 - s.got.length);
});

test('reconfigure swaps the chain; a bad option keeps the old one', async () => {
  const s = await server();
  const out = new Outcomes();
  const r = new Replayer(options([s.url]), out);
  r.reconfigure({ keepHost: true, sampling: { percentage: 0, by: 'random' }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES });
  r.submit(req('GET', '/', []), flow);
  assert.throws(() => r.reconfigure({ keepHost: true, sampling: { percentage: 100, by: 'random' }, rate: 0, filters: { ...NO_FILTERS, allowUrls: ['('] }, rewrites: NO_REWRITES }));
  r.submit(req('GET', '/', []), flow);
  await r.drain(1000);
  s.close();
  assert.equal(out.drops.sampled_out, 2);
  assert.equal(s.got.length, 0);
});
