/** `mirror-replay report FILE…`: summarise shadow-testing diff logs (text, or --json). */
import yargs from 'yargs';
import { buildReport, formatReport } from '../compare/report.js';

export async function runReport(argv: string[]): Promise<number> {
  let failure: string | null = null;
  try {
    const a = yargs(argv)
      .scriptName('mirror-replay report')
      .usage('$0 FILE [FILE…]\n\nSummarises --diff-log files (give the rotated FILE.1… too for the whole period): mismatch rate, top routes by mismatch, an example of each kind; noise apart.')
      .option('top', { type: 'number', default: 10, describe: 'How many routes to list' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as JSON' })
      .strictOptions()
      .help()
      .exitProcess(false)
      .fail((msg, e) => {
        failure = e?.message ?? msg;
      })
      .parseSync() as Record<string, unknown> & { _: Array<string | number> };
    if (failure) throw new Error(failure);
    if (a.help) return 0;
    const files = a._.map(String);
    if (!files.length) throw new Error('give at least one diff log file');
    const top = Number(a.top);
    if (!(Number.isInteger(top) && top > 0)) throw new Error(`--top must be a positive whole number, got ${String(a.top)}`);
    const r = await buildReport(files, top);
    process.stdout.write(a.json ? `${JSON.stringify(r, null, 2)}\n` : formatReport(r));
    return 0;
  } catch (e) {
    process.stderr.write(`mirror-replay report: ${(e as Error).message}\n`);
    return 2;
  }
}
