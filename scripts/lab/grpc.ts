/**
 * A real gRPC server and client (@grpc/grpc-js) for the namespace lab, on the service of
 * test/fixtures/grpc/lab.proto.
 *
 *   node grpc.js server --listen 10.213.1.2:50051 --out FILE [--fail /mrlab.Lab/Check=5]
 *   node grpc.js client --target 10.213.1.2:50051 --channels 3 --unary 300 --streams 60
 *     [--concurrency 16] [--prefix p] [--interval-ms 0] [--max-seconds 60]
 *
 * The server writes one JSON line per call it receives: the method path, every metadata entry
 * (binary ones base64) and the request message's bytes exactly as they arrived (base64), so
 * production's and the test environment's records can be compared byte for byte. Echo answers
 * the note, List streams `count` notes, Check answers OK, or the status given by --fail.
 *
 * The client opens `channels` channels of their own (one HTTP/2 connection each) and runs unary
 * and server-streaming calls on them, `concurrency` at a time per channel, so streams interleave.
 * Every call carries `x-call-id` (unique), `x-lab` and a binary `x-trace-bin` entry. It prints
 * one JSON line: { ok, failed, messages, failures: [...first ten], seconds }.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository root (this file is dist/scripts/lab/grpc.js once built). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const LAB_PROTO = path.join(ROOT, 'test/fixtures/grpc/lab.proto');

const argv = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const all = (name: string): string[] => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]] : []));

interface Note {
  id: string;
  payload: Buffer;
  n: number;
}
/** What a handler gets: the decoded message and the bytes it came from. */
interface Raw<T> {
  raw: Buffer;
  msg: T;
}

function loadService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(LAB_PROTO, { keepCase: true, longs: Number, defaults: true });
  return def['mrlab.Lab'] as grpc.ServiceDefinition;
}

function metadataJson(md: grpc.Metadata): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, vs] of Object.entries(md.toJSON())) out[k] = (vs as Array<string | Buffer>).map((v) => (Buffer.isBuffer(v) ? `base64:${v.toString('base64')}` : v));
  return out;
}

function server(): void {
  const listen = opt('listen');
  const out = opt('out');
  if (!listen || !out) throw new Error('usage: grpc.js server --listen HOST:PORT --out FILE [--fail /pkg.Svc/Method=CODE]');
  const fails = new Map(all('fail').map((f) => [f.split('=')[0], Number(f.split('=')[1])]));
  const sink = fs.createWriteStream(out, { flags: 'a' });
  const service = loadService();
  // Keep the request's bytes: wrap each method's deserializer.
  const raw: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(service)) raw[name] = { ...m, requestDeserialize: (b: Buffer) => ({ raw: Buffer.from(b), msg: m.requestDeserialize(b) }) };
  const record = (call: grpc.ServerUnaryCall<Raw<unknown>, unknown> | grpc.ServerWritableStream<Raw<unknown>, unknown>) =>
    sink.write(`${JSON.stringify({ method: call.getPath(), metadata: metadataJson(call.metadata), message: call.request.raw.toString('base64') })}\n`);
  const s = new grpc.Server();
  s.addService(raw as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Raw<Note>, Note>, cb: grpc.sendUnaryData<Note>) => {
      record(call);
      cb(null, call.request.msg);
    },
    Check: (call: grpc.ServerUnaryCall<Raw<Note>, Note>, cb: grpc.sendUnaryData<Note>) => {
      record(call);
      const code = fails.get(call.getPath());
      if (code) cb({ code, details: `lab: ${call.getPath()} fails here` });
      else cb(null, call.request.msg);
    },
    List: (call: grpc.ServerWritableStream<Raw<{ id: string; count: number }>, Note>) => {
      record(call);
      const { id, count } = call.request.msg;
      for (let i = 0; i < count; i++) call.write({ id: `${id}/${i}`, payload: Buffer.alloc(100 + i, i), n: i });
      call.end();
    },
  });
  s.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    process.stdout.write('ready\n');
  });
  const stop = () => s.tryShutdown(() => sink.end(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

type LabClient = grpc.Client & {
  Echo(n: Note, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Note) => void): void;
  Check(n: Note, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Note) => void): void;
  List(r: { id: string; count: number }, md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientReadableStream<Note>;
};

async function client(): Promise<void> {
  const target = opt('target');
  if (!target) throw new Error('usage: grpc.js client --target HOST:PORT [--channels N --unary N --streams N --checks N]');
  const channels = Number(opt('channels', '3'));
  const unary = Number(opt('unary', '300'));
  const streams = Number(opt('streams', '60'));
  const checks = Number(opt('checks', '0'));
  const concurrency = Number(opt('concurrency', '16'));
  const prefix = opt('prefix', 'g')!;
  const intervalMs = Number(opt('interval-ms', '0'));
  const deadline = Date.now() + Number(opt('max-seconds', '60')) * 1000;
  const Ctor = grpc.makeGenericClientConstructor(loadService(), 'Lab');
  // A local subchannel pool per client: each channel is a connection of its own.
  const clients = Array.from({ length: channels }, () => new Ctor(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as LabClient);
  const start = Date.now();
  let ok = 0;
  let messages = 0;
  const failures: string[] = [];
  // The calls, spread over the channels in turn: unary Echo, server-streaming List, Check.
  const calls: Array<{ kind: 'echo' | 'list' | 'check'; k: number }> = [];
  for (let k = 0; k < Math.max(unary, streams, checks); k++) {
    if (k < unary) calls.push({ kind: 'echo', k });
    if (k < streams) calls.push({ kind: 'list', k });
    if (k < checks) calls.push({ kind: 'check', k });
  }
  const one = (c: LabClient, call: (typeof calls)[number], ch: number): Promise<void> => {
    const id = `${prefix}-${ch}-${call.kind}-${call.k}`;
    const md = new grpc.Metadata();
    md.set('x-call-id', id);
    md.set('x-lab', `channel ${ch}`);
    md.set('x-trace-bin', randomBytes(8));
    const opts = { deadline: Date.now() + 15_000 };
    return new Promise((resolve) => {
      const done = (e: grpc.ServiceError | null | undefined, n = 1) => {
        if (e) failures.push(`${id}: ${e.code} ${e.details}`);
        else {
          ok++;
          messages += n;
        }
        resolve();
      };
      if (call.kind === 'list') {
        let got = 0;
        const s = c.List({ id, count: 1 + (call.k % 7) }, md, opts);
        s.on('data', () => got++);
        s.on('error', (e: grpc.ServiceError) => done(e));
        s.on('end', () => done(null, got));
      } else {
        const note = { id, payload: randomBytes(call.k % 2000), n: call.k };
        (call.kind === 'echo' ? c.Echo : c.Check).call(c, note, md, opts, (e) => done(e));
      }
    });
  };
  await Promise.all(
    clients.map(async (c, ch) => {
      const mine = calls.filter((_, i) => i % channels === ch);
      let next = 0;
      const worker = async () => {
        while (next < mine.length && Date.now() < deadline) {
          const call = mine[next++];
          await one(c, call, ch);
          if (intervalMs) await new Promise((r) => setTimeout(r, intervalMs));
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    }),
  );
  for (const c of clients) c.close();
  process.stdout.write(`${JSON.stringify({ ok, failed: failures.length, messages, failures: failures.slice(0, 10), seconds: (Date.now() - start) / 1000 })}\n`);
}

if (argv[0] === 'server') server();
else if (argv[0] === 'client') {
  client().catch((e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: grpc.js server|client ...\n');
  process.exit(2);
}
