import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampler } from '../../src/replay/sampling.js';
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
