/** A small SVG chart writer for benchmark results: scatter/line series on linear axes, no dependencies. */

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
  /** Draw markers at the points (default true). */
  markers?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range; defaults to 0 .. max rounded up. */
  yMax?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" upper bound and tick step for 0..max. */
function ticks(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

const label = (v: number) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(2)}`);

/** Panels stacked vertically, sharing the width; returns the SVG document. */
export function chart(title: string, panels: Panel[], opts: { width?: number; panelHeight?: number; footer?: string } = {}): string {
  const W = opts.width ?? 760;
  const PH = opts.panelHeight ?? 260;
  const L = 70, R = 170, T = 40, GAP = 60;
  const H = T + panels.length * (PH + GAP) + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  const xMaxAll = Math.max(1, ...panels.flatMap((p) => p.series.flatMap((s) => s.points.map((q) => q[0]))));
  const xt = ticks(xMaxAll);
  panels.forEach((p, i) => {
    const top = T + i * (PH + GAP) + 20;
    const pw = W - L - R;
    const ph = PH - 40;
    const yt = ticks(p.yMax ?? Math.max(...p.series.flatMap((s) => s.points.map((q) => q[1])), 0));
    const X = (x: number) => L + (x / xt.top) * pw;
    const Y = (y: number) => top + ph - (Math.min(y, yt.top) / yt.top) * ph;
    out.push(`<text x="${L}" y="${top - 8}" font-weight="bold">${esc(p.title)}</text>`);
    for (let v = 0; v <= yt.top + 1e-9; v += yt.step) {
      out.push(`<line x1="${L}" x2="${L + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`);
      out.push(`<text x="${L - 6}" y="${Y(v) + 4}" text-anchor="end">${label(v)}</text>`);
    }
    for (let v = 0; v <= xt.top + 1e-9; v += xt.step) {
      out.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${top}" y2="${top + ph}" stroke="#eee"/>`);
      out.push(`<text x="${X(v)}" y="${top + ph + 16}" text-anchor="middle">${label(v)}</text>`);
    }
    out.push(`<rect x="${L}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
    out.push(`<text x="${L + pw / 2}" y="${top + ph + 34}" text-anchor="middle">${esc(p.xLabel)}</text>`);
    out.push(`<text transform="translate(${16} ${top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
    p.series.forEach((s, k) => {
      const pts = [...s.points].sort((a, b) => a[0] - b[0]);
      if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
      if (s.markers !== false) for (const [x, y] of pts) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
      const ly = top + 14 + k * 18;
      out.push(`<line x1="${L + pw + 12}" x2="${L + pw + 34}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      out.push(`<text x="${L + pw + 40}" y="${ly}">${esc(s.name)}</text>`);
    });
  });
  if (opts.footer) out.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="10" fill="#555">${esc(opts.footer)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
