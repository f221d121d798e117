import { test } from 'node:test';
import assert from 'node:assert/strict';
import client from 'prom-client';
import fc from 'fast-check';
import { SeriesHistogram } from '../../src/metrics/histogram.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The same observations into prom-client's Histogram and ours, each in its own registry. */
async function both(observations: Array<[string, number]>) {
  const theirs = new client.Registry();
  const ours = new client.Registry();
  const h = new client.Histogram({ name: 'x_seconds', help: 'h', labelNames: ['destination'], buckets: BUCKETS, registers: [theirs] });
  const s = new SeriesHistogram('x_seconds', 'h', BUCKETS).register(ours);
  for (const [d, v] of observations) {
    h.observe({ destination: d }, v);
    s.record(s.series({ destination: d }), v);
  }
  return { theirs: await theirs.metrics(), ours: await ours.metrics(), theirsJson: await theirs.getMetricsAsJSON(), oursJson: await ours.getMetricsAsJSON() };
}

test('SeriesHistogram exports what prom-client\'s Histogram exports for the same observations (text and JSON)', async () => {
  const r = await both([['http://a', 0.0004], ['http://a', 0.001], ['http://a', 0.0010001], ['http://b', 7], ['http://a', 10], ['http://a', 11], ['http://b', 0]]);
  assert.equal(r.ours, r.theirs);
  assert.deepEqual(r.oursJson, r.theirsJson);
  assert.match(r.ours, /x_seconds_bucket\{le="0.001",destination="http:\/\/a"\} 2/);
});

test('SeriesHistogram: any observations, same exposition as prom-client', async () => {
  const dest = fc.constantFrom('http://10.0.0.1', 'http://10.0.0.2:8080', 'https://x');
  const value = fc.oneof(fc.constantFrom(...BUCKETS, 0, 20), fc.double({ min: 0, max: 30, noNaN: true }));
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(dest, value), { maxLength: 60 }), async (obs) => {
    const r = await both(obs);
    assert.equal(r.ours, r.theirs);
  }), { numRuns: 200, seed: 15 });
});

test('SeriesHistogram: reset() zeroes every series, which stays exported', async () => {
  const reg = new client.Registry();
  const s = new SeriesHistogram('y_seconds', 'h', BUCKETS).register(reg);
  s.record(s.series({ destination: 'd' }), 0.3);
  reg.resetMetrics();
  assert.match(await reg.metrics(), /y_seconds_count\{destination="d"\} 0/);
});
