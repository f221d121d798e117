/**
 * A minimal HTTP/1.1 sink on node:net for the replay and pipeline benchmarks, run in its own
 * process so that it is not what limits them. It frames requests by Content-Length only (the
 * benchmarks send nothing else), answers each with a fixed 200 and batches the answers of one
 * read into one write. An HTTP/1.0 request is answered with HTTP/1.0 and the connection closed
 * after it, as an HTTP/1.0 server does (the churn benchmark). Not a general server: a request it
 * cannot frame closes the connection.
 *
 *   node sink.js [--port N]   prints "listening PORT"; SIGTERM stops it and prints the count
 */
import net from 'node:net';

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'latin1');
const RESPONSE_10 = Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', 'latin1');
const HTTP10 = Buffer.from(' HTTP/1.0\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const MAX_HEAD = 256 * 1024;
let requests = 0;

const CL = /\r\ncontent-length:[ \t]*(\d+)/;
const TE = /\r\ntransfer-encoding:/;

/** Content-Length of the header section d[start, end), 0 if none, -1 if chunked (not handled). */
function contentLength(d: Buffer, start: number, end: number): number {
  const head = d.toString('latin1', start, end).toLowerCase();
  if (TE.test(head)) return -1;
  const m = CL.exec(head);
  return m ? Number(m[1]) : 0;
}

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  let pending: Buffer | null = null;
  let bodyLeft = 0;
  sock.on('data', (chunk: Buffer) => {
    const d = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    let p = 0;
    let answers = 0;
    while (p < d.length) {
      if (bodyLeft > 0) {
        const take = Math.min(bodyLeft, d.length - p);
        bodyLeft -= take;
        p += take;
        if (bodyLeft === 0) answers++;
        continue;
      }
      const e = d.indexOf(CRLFCRLF, p);
      if (e < 0) {
        if (d.length - p > MAX_HEAD) return sock.destroy();
        pending = d.subarray(p);
        break;
      }
      const cl = contentLength(d, p, e + 2);
      if (cl < 0) return sock.destroy();
      const line = d.indexOf(HTTP10, p);
      if (cl === 0 && line >= 0 && line < d.indexOf('\r\n', p)) {
        // HTTP/1.0: the answer, then close (what came after it is not read).
        requests += answers + 1;
        if (answers) sock.write(Buffer.concat(Array(answers).fill(RESPONSE)));
        sock.end(RESPONSE_10);
        return;
      }
      p = e + 4;
      if (cl === 0) answers++;
      else bodyLeft = cl;
    }
    if (answers) {
      requests += answers;
      sock.write(answers === 1 ? RESPONSE : Buffer.concat(Array(answers).fill(RESPONSE)));
    }
  });
  sock.on('error', () => sock.destroy());
});

const i = process.argv.indexOf('--port');
server.listen(i > 0 ? Number(process.argv[i + 1]) : 0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  process.stdout.write(`requests ${requests}\n`);
  process.exit(0);
});
