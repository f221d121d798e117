/**
 * The long fuzz run: `npm run fuzz [-- COUNT [SEED]]` (default 100,000 inputs per target, seed
 * from the clock). Prints the counts; a failure prints the seed and input index to replay it.
 */
import { fuzzDecoder, fuzzParser } from './fuzz.js';
import { fuzzH2Answers, fuzzH2Requests } from './h2.js';

const count = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? (Date.now() & 0x7fffffff));
const t0 = Date.now();
const d = fuzzDecoder(count, seed);
const t1 = Date.now();
const h = fuzzParser(count, seed);
const t2 = Date.now();
const e = fuzzDecoder(count, seed, { encap: true });
const t3 = Date.now();
const h2 = fuzzH2Requests(count, seed);
const t4 = Date.now();
const h2a = fuzzH2Answers(count, seed);
const t5 = Date.now();
console.log(JSON.stringify({
  seed,
  decoder: { ...d, seconds: (t1 - t0) / 1000 },
  parser: { ...h, seconds: (t2 - t1) / 1000 },
  decap: { ...e, seconds: (t3 - t2) / 1000 },
  h2Requests: { ...h2, seconds: (t4 - t3) / 1000 },
  h2Answers: { ...h2a, seconds: (t5 - t4) / 1000 },
}));
