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

/** Outcomes plus the amplification and per-rule counts. */
class AmpOutcomes extends Outcomes {
  copies = 0;
  byRule: Record<string, number> = {};
  copied(n: number) {
    this.copies += n;
  }
  rateLimited(rule: string) {
    this.byRule[rule] = (this.byRule[rule] ?? 0) + 1;
  }
}

const copyOf = (raw: string[]) => {
  const i = raw.findIndex((h) => h.toLowerCase() === 'x-mirror-copy');
  return i < 0 ? '-' : raw[i + 1];
};

test('--percentage 300 with a copy header: three sends of each, the original as at 100%, copies marked 1 and 2', async () => {
  const plain = await server();
  const amp = await server();
  const p = new Replayer(options([plain.url], { markHeader: 'X-Mirror-Replay' }), new Outcomes());
  const out = new AmpOutcomes();
  const r = new Replayer(options([amp.url], { markHeader: 'X-Mirror-Replay', sampling: { percentage: 300, by: 'random' }, copyHeader: 'X-Mirror-Copy' }), out);
  for (let i = 0; i < 40; i++) {
    const q = req('GET', `/a/${i}`, ['X-Id', String(i), 'Accept', '*/*']);
    p.submit(q, flow);
    assert.equal(r.submit(q, flow), true);
  }
  await Promise.all([p.drain(3000), r.drain(3000)]);
  plain.close();
  amp.close();
  assert.equal(amp.got.length, 120);
  assert.equal(out.copies, 80);
  assert.deepEqual(out.drops, {});
  const byId = new Map<string, string[]>();
  for (const g of amp.got) {
    const id = g.raw[g.raw.indexOf('X-Id') + 1];
    byId.set(id, [...(byId.get(id) ?? []), copyOf(g.raw)].sort());
  }
  for (const marks of byId.values()) assert.deepEqual(marks, ['-', '1', '2']);
  // The original carries exactly what a replay at 100% carries, field for field (the port in Host differs).
  const orig = amp.got.filter((g) => copyOf(g.raw) === '-').map((g) => ({ url: g.url, raw: g.raw.filter((_, i, a) => a[i - (i % 2)] !== 'Host') }));
  const base = plain.got.map((g) => ({ url: g.url, raw: g.raw.filter((_, i, a) => a[i - (i % 2)] !== 'Host') }));
  const key = (x: { url: string }) => x.url;
  assert.deepEqual(orig.sort((a, b) => key(a).localeCompare(key(b))), base.sort((a, b) => key(a).localeCompare(key(b))));
  // A copy differs from its original only by the marker, appended last.
  const c = amp.got.find((g) => copyOf(g.raw) === '1')!;
  const o = amp.got.find((g) => g.url === c.url && copyOf(g.raw) === '-')!;
  assert.deepEqual(c.raw.slice(0, -2), o.raw);
  assert.deepEqual(c.raw.slice(-2), ['X-Mirror-Copy', '1']);
});

test('copies obey the rate caps and the queue bound, each drop counted under its reason and rule', async () => {
  const s = await server();
  const out = new AmpOutcomes();
  const r = new Replayer(options([s.url], { sampling: { percentage: 200, by: 'random' }, routeRates: ['30:^/capped/'], copyHeader: 'X-Mirror-Copy', maxConcurrency: 1, maxQueue: 50 }), out);
  // 100 capped requests = 200 sends offered to a 30/s cap; 100 free ones = 200 sends to a queue of 50.
  for (let i = 0; i < 100; i++) r.submit(req('GET', `/capped/${i}`, []), flow);
  const cappedSent = 200 - (out.drops.rate_limited ?? 0);
  for (let i = 0; i < 100; i++) r.submit(req('GET', `/free/${i}`, []), flow);
  await r.drain(5000);
  s.close();
  assert.equal(out.copies, 200);
  assert.ok(cappedSent >= 30 && cappedSent <= 32, String(cappedSent));
  assert.deepEqual(out.byRule, { '^/capped/': 200 - cappedSent });
  const queueFull = out.drops.queue_full ?? 0;
  assert.ok(queueFull > 0, 'the queue bound held copies too');
  assert.equal(s.got.length + (out.drops.rate_limited ?? 0) + queueFull, 400, 'every send replayed or counted');
});

test('shadow answers go to the original only; an original dropped by a cap is not compared', async () => {
  const s = await server();
  const out = new AmpOutcomes();
  const r = new Replayer(options([s.url], { sampling: { percentage: 300, by: 'random' }, copyHeader: 'X-Mirror-Copy' }), out);
  const settled: string[] = [];
  const sink = { snippetBytes: 0, captureJsonBytes: 0, answered: () => settled.push('answered'), failed: (why: string) => settled.push(why) };
  assert.equal(r.submit(req('GET', '/x', []), flow, [sink]), true);
  await r.drain(3000);
  s.close();
  assert.equal(s.got.length, 3);
  assert.deepEqual(settled, ['answered'], 'one answer, the original’s');
  const capped = new Replayer(options(['http://127.0.0.1:9'], { rate: 1, sampling: { percentage: 100, by: 'random' } }), new AmpOutcomes());
  const none = { ...sink, answered: () => settled.push('late'), failed: () => settled.push('late') };
  capped.submit(req('GET', '/y', []), flow, [sink]);
  assert.equal(capped.submit(req('GET', '/z', []), flow, [none]), false, 'rate-limited original: left out of comparing');
  await capped.drain(2000);
  assert.ok(!settled.includes('late'));
});

test('reconfigure: route caps and amplification change live; a bad route cap keeps the old chain', async () => {
  const s = await server();
  const out = new AmpOutcomes();
  const r = new Replayer(options([s.url]), out);
  const policy = { keepHost: false, sampling: { percentage: 200, by: 'random' as const }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES, routeRates: ['2:^/a'] };
  r.reconfigure(policy);
  for (let i = 0; i < 10; i++) r.submit(req('GET', '/a', []), flow);
  assert.throws(() => r.reconfigure({ ...policy, routeRates: ['2:('] }), /--route-rate/);
  for (let i = 0; i < 10; i++) r.submit(req('GET', '/a', []), flow);
  await r.drain(2000);
  s.close();
  assert.equal(out.copies, 20);
  assert.ok(s.got.length >= 2 && s.got.length <= 3, String(s.got.length));
  assert.deepEqual(out.byRule, { '^/a': 40 - s.got.length });
});
