// Small SVG charts for the dashboard: line charts (curves over steps or time) and stacked bars. No library,
// no build step. Each chart is drawn into a container element; redrawing replaces it.
"use strict";

const PALETTE = ["#2f5fb3", "#d0582f", "#2e7d32", "#8e44ad", "#b7950b", "#16a085", "#c0392b", "#5d6d7e"];

function niceTicks(lo, hi, count) {
  if (!isFinite(lo) || !isFinite(hi)) return [];
  if (lo === hi) { lo -= 1; hi += 1; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

function fmtTick(v, time) {
  if (time) {
    const d = new Date(v * 1000);
    return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " +
      d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (a !== 0 && a < 0.01) return v.toExponential(0);
  return String(+v.toPrecision(4));
}

function el(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(container, opts) {
  container.innerHTML = "";
  container.classList.add("chart");
  if (opts.title) {
    const h = document.createElement("h3");
    h.textContent = opts.title;
    container.appendChild(h);
  }
  const W = opts.width || 880, H = opts.height || 260, M = { l: 56, r: opts.time ? 48 : 14, t: 10, b: 34 };
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || "chart" });
  container.appendChild(svg);
  return { svg, W, H, M };
}

function axes(f, xs, ys, opts) {
  const { svg, W, H, M } = f;
  const sx = (v) => M.l + ((v - xs[0]) / ((xs[1] - xs[0]) || 1)) * (W - M.l - M.r);
  const sy = (v) => H - M.b - ((v - ys[0]) / ((ys[1] - ys[0]) || 1)) * (H - M.t - M.b);
  for (const t of niceTicks(ys[0], ys[1], 5)) {
    svg.appendChild(el("line", { x1: M.l, x2: W - M.r, y1: sy(t), y2: sy(t), stroke: "#eef0f4" }));
    svg.appendChild(el("text", { x: M.l - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6575" }, fmtTick(t)));
  }
  for (const t of opts.noXTicks ? [] : niceTicks(xs[0], xs[1], opts.time ? 4 : 6)) {
    svg.appendChild(el("line", { x1: sx(t), x2: sx(t), y1: H - M.b, y2: H - M.b + 4, stroke: "#99a" }));
    svg.appendChild(el("text", { x: sx(t), y: H - M.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#5b6575" }, fmtTick(t, opts.time)));
  }
  svg.appendChild(el("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, stroke: "#99a" }));
  if (opts.xLabel) svg.appendChild(el("text", { x: W - M.r, y: H - 4, "text-anchor": "end", "font-size": 11, fill: "#5b6575" }, opts.xLabel));
  return { sx, sy };
}

function legend(container, items) {
  const div = document.createElement("div");
  div.className = "legend";
  for (const [name, color, dash] of items) {
    const span = document.createElement("span");
    const i = document.createElement("i");
    i.style.background = color;
    if (dash) i.style.opacity = "0.6";
    span.appendChild(i);
    span.appendChild(document.createTextNode(name));
    div.appendChild(span);
  }
  container.appendChild(div);
}

// series: [{name, points: [[x, y], ...], color?, dash?, dots?}]
function lineChart(container, series, opts = {}) {
  const f = frame(container, opts);
  const pts = series.flatMap((s) => s.points).filter((p) => isFinite(p[0]) && isFinite(p[1]));
  container.dataset.points = String(pts.length);
  if (!pts.length) {
    f.svg.appendChild(el("text", { x: f.W / 2, y: f.H / 2, "text-anchor": "middle", fill: "#5b6575" }, opts.empty || "no data yet"));
    return;
  }
  const xs = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let ys = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (opts.zero) ys[0] = Math.min(0, ys[0]);
  const pad = (ys[1] - ys[0]) * 0.06 || Math.abs(ys[0]) * 0.1 || 1;
  ys = [ys[0] - (opts.zero && ys[0] === 0 ? 0 : pad), ys[1] + pad];
  const { sx, sy } = axes(f, xs, ys, opts);
  series.forEach((s, i) => {
    const color = s.color || PALETTE[i % PALETTE.length];
    const good = s.points.filter((p) => isFinite(p[0]) && isFinite(p[1]));
    if (!good.length) return;
    const d = good.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    const path = el("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, "data-series": s.name });
    if (s.dash) path.setAttribute("stroke-dasharray", "5 4");
    f.svg.appendChild(path);
    if (s.dots || good.length < 3) {
      for (const p of good) {
        const c = el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: color });
        c.appendChild(el("title", {}, `${s.name}: ${fmtTick(p[1])} at ${fmtTick(p[0], opts.time)}`));
        f.svg.appendChild(c);
      }
    }
  });
  legend(container, series.map((s, i) => [s.name, s.color || PALETTE[i % PALETTE.length], s.dash]));
}

// buckets: [{x, values: {name: n}}]; stacked bars over x (time buckets or categories).
function stackedBars(container, buckets, opts = {}) {
  const f = frame(container, opts);
  container.dataset.points = String(buckets.length);
  if (!buckets.length) {
    f.svg.appendChild(el("text", { x: f.W / 2, y: f.H / 2, "text-anchor": "middle", fill: "#5b6575" }, opts.empty || "no data yet"));
    return;
  }
  const names = opts.names || [...new Set(buckets.flatMap((b) => Object.keys(b.values)))];
  const totals = buckets.map((b) => names.reduce((a, n) => a + (b.values[n] || 0), 0));
  const xs = [buckets[0].x, buckets[buckets.length - 1].x + (opts.width_x || 1)];
  const { sx, sy } = axes(f, xs, [0, Math.max(1, ...totals) * 1.05], { ...opts, noXTicks: !!opts.labels });
  const bw = Math.min(opts.labels ? 90 : Infinity, Math.max(2, (sx(xs[0] + (opts.width_x || 1)) - sx(xs[0])) * 0.85));
  if (opts.labels) {  // categories: a label under each bar instead of numeric ticks
    buckets.forEach((b, i) => f.svg.appendChild(el("text", {
      x: sx(b.x) + bw / 2, y: f.H - f.M.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#5b6575",
    }, opts.labels[i])));
  }
  buckets.forEach((b) => {
    let base = 0;
    names.forEach((n, i) => {
      const v = b.values[n] || 0;
      if (!v) return;
      const r = el("rect", { x: sx(b.x), y: sy(base + v), width: bw, height: sy(base) - sy(base + v), fill: PALETTE[i % PALETTE.length] });
      r.appendChild(el("title", {}, `${n}: ${v}`));
      f.svg.appendChild(r);
      base += v;
    });
  });
  legend(container, names.map((n, i) => [n, PALETTE[i % PALETTE.length]]));
}

window.tsCharts = { lineChart, stackedBars, PALETTE };
