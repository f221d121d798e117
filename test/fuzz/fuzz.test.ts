import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzDecoder, fuzzParser, pcapFrames } from './fuzz.js';

// The short run; `npm run fuzz` does 100,000+ inputs each with fresh seeds.
const N = 20_000;

test(`frame decoder + reassembly + parser: ${N} random and mutated frames, no crash, views in bounds`, () => {
  assert.ok(pcapFrames().length > 10, 'seeded from the pcap fixture');
  for (const seed of [1, 2]) {
    const r = fuzzDecoder(N / 2, seed);
    assert.equal(r.inputs, N / 2);
    assert.ok(r.accepted > 0, 'some mutants still decode, so reassembly and the parser get fuzzed too');
  }
});

test(`user-space decapsulation: ${N} random and mutated VXLAN/GWLB GENEVE frames, no crash, views in bounds`, () => {
  const r = fuzzDecoder(N / 2, 3, { encap: true });
  assert.equal(r.inputs, N / 2);
  assert.ok(r.accepted > 0, 'some mutants still decapsulate, so reassembly and the parser behind them get fuzzed too');
});

test(`HTTP parser: ${N} random and mutated streams in random pieces with gaps, taints and stalls`, () => {
  for (const seed of [1, 2]) {
    const r = fuzzParser(N / 2, seed);
    assert.ok(r.accepted > 0 && r.dropped > 0, JSON.stringify(r));
  }
});

test('HTTP/2 requests: 5,000 lossy, mutated and frame-injected real connections (fast-check), no partial or invented request', async () => {
  const { fuzzH2Requests } = await import('./h2.js');
  const r = fuzzH2Requests(5000, 1);
  assert.ok(r.accepted > 0 && r.dropped > 0, JSON.stringify(r));
});

test('HTTP/2 answers: 2,000 mutated server sides cut anywhere, the same events whatever the cut', async () => {
  const { fuzzH2Answers } = await import('./h2.js');
  const r = fuzzH2Answers(2000, 2);
  assert.ok(r.accepted > 0 && r.dropped > 0, JSON.stringify(r));
});
