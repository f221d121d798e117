import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sampler, sendCounter } from '../../src/replay/sampling.js';
import type { HttpRequest } from '../../src/http/types.js';

const req = (headers: string[] = []): HttpRequest => ({ method: 'GET', target: '/', minorVersion: 1, headers, body: Buffer.alloc(0), chunked: false, trailers: [] });
const flow = (addr: string) => ({ clientAddr: addr, clientPort: 1, serverAddr: '10.0.0.1', serverPort: 80, ipVersion: 4 });

test('100 and 0 percent', () => {
  assert.equal(sampler({ percentage: 100, by: 'random' })(req(), flow('a')), true);
  assert.equal(sampler({ percentage: 0, by: 'random' })(req(), flow('a')), false);
});

test('random sampling is within 1.5 points of the percentage over 20,000 requests', () => {
  let seed = 42;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const keep = sampler({ percentage: 30, by: 'random' }, rnd);
  let n = 0;
  for (let i = 0; i < 20000; i++) if (keep(req(), flow('x'))) n++;
  assert.ok(Math.abs(n / 200 - 30) < 1.5, `${n / 200}%`);
});

test('by remote address: sticky per address, and about the right share of addresses', () => {
  const keep = sampler({ percentage: 25, by: 'remoteaddr' });
  let n = 0;
  for (let i = 0; i < 10000; i++) {
    const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const first = keep(req(), flow(a));
    for (let k = 0; k < 3; k++) assert.equal(keep(req(), flow(a)), first);
    if (first) n++;
  }
  assert.ok(Math.abs(n / 100 - 25) < 2, `${n / 100}%`);
});

test('by header: sticky per value, case-insensitive name, absent header is one value', () => {
  const keep = sampler({ percentage: 50, by: 'header', header: 'X-User' });
  let n = 0;
  for (let i = 0; i < 10000; i++) {
    const a = keep(req(['x-user', `user-${i}`]), flow('1'));
    assert.equal(keep(req(['X-USER', `user-${i}`]), flow('2')), a);
    if (a) n++;
  }
  assert.ok(Math.abs(n / 100 - 50) < 2.5, `${n / 100}%`);
  assert.equal(keep(req(), flow('1')), keep(req(), flow('9')));
});

test('above 100: 250 sends every request twice and half of them a third time', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const count = sendCounter({ percentage: 250, by: 'random' }, rnd);
  const hist = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) hist[count(req(), flow('x'))]++;
  assert.equal(hist[0] + hist[1], 0);
  assert.equal(hist[2] + hist[3], 20000);
  assert.ok(Math.abs(hist[3] / 20000 - 0.5) < 0.02, `${hist}`);
  assert.equal(sendCounter({ percentage: 300, by: 'random' }, () => 0.999)(req(), flow('x')), 3);
  assert.equal(sendCounter({ percentage: 300, by: 'random' }, () => 0)(req(), flow('x')), 3);
  assert.equal(sendCounter({ percentage: 1000, by: 'header', header: 'X-U' })(req(), flow('x')), 10);
});

test('property: the send count is floor(P/100) or one more, sticky per key, and its mean is P/100', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1000 }),
      fc.constantFrom<'header' | 'remoteaddr'>('header', 'remoteaddr'),
      fc.string({ maxLength: 12 }),
      (percentage, by, salt) => {
        const count = sendCounter({ percentage, by, header: 'X-User' });
        const whole = Math.floor(percentage / 100);
        const keys = 4000;
        let sum = 0;
        for (let i = 0; i < keys; i++) {
          const key = `${salt}-${i}`;
          const r = req(['X-User', key]);
          const f = flow(key);
          const n = count(r, f);
          assert.ok(n === whole || n === whole + 1, `${percentage}%: ${n}`);
          // Sticky: the same key always gets the same count, whatever else the request carries.
          assert.equal(count(req(['x-user', key, 'Other', 'y']), flow(key)), n);
          sum += n;
        }
        if (percentage % 100 === 0) assert.equal(sum, whole * keys);
        // Binomial(4000, frac): 5 standard deviations are at most 0.04 of a send per request.
        assert.ok(Math.abs(sum / keys - percentage / 100) < 0.04, `${percentage}% by ${by}: mean ${sum / keys}`);
        // At most 100, the same decision as the sampler's.
        if (percentage <= 100) assert.equal(sampler({ percentage, by, header: 'X-User' })(req(['X-User', `${salt}-0`]), flow(`${salt}-0`)), count(req(['X-User', `${salt}-0`]), flow(`${salt}-0`)) === 1);
      },
    ),
    { numRuns: 60, seed: 20261130 },
  );
});
