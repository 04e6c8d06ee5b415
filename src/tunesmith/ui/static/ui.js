// The dashboard's page scripts: sorting and filtering the runs table, live curves, starting and stopping runs,
// the side-by-side playground with feedback, and the monitoring charts. Plain JavaScript, no build step.
"use strict";

const tsUi = (() => {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  async function api(method, url, body) {
    const res = await fetch(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = (data && data.error && (data.error.message || data.error)) || (data && data.detail && JSON.stringify(data.detail)) || res.statusText;
      throw new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
    }
    return data;
  }

  function setBadge(node, text) {
    if (!node) return;
    node.textContent = text;
    node.className = "badge " + text;
  }

  // ---- runs table ----
  function runsTable() {
    const table = $("#runs");
    if (!table) return;
    const body = table.tBodies[0];
    const filter = $("#filter"), status = $("#status-filter"), compare = $("#compare");
    const apply = () => {
      const q = filter.value.trim().toLowerCase(), s = status.value;
      let shown = 0;
      for (const tr of body.rows) {
        const text = Object.values(tr.dataset).join(" ").toLowerCase();
        const ok = (!q || q.split(/\s+/).every((w) => text.includes(w))) && (!s || tr.dataset.status === s);
        tr.classList.toggle("hidden", !ok);
        shown += ok ? 1 : 0;
      }
      $("#count").textContent = `${shown} of ${body.rows.length} runs`;
    };
    filter.addEventListener("input", apply);
    status.addEventListener("change", apply);
    $$("th.sortable", table).forEach((th) => th.addEventListener("click", () => {
      const key = th.dataset.key, num = !!th.dataset.num;
      const asc = !th.classList.contains("asc");
      $$("th.sortable", table).forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(asc ? "asc" : "desc");
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        let x = a.dataset[key], y = b.dataset[key];
        if (num) {
          x = x === "" ? NaN : +x; y = y === "" ? NaN : +y;
          if (isNaN(x) && isNaN(y)) return 0;
          if (isNaN(x)) return 1;
          if (isNaN(y)) return -1;
          return asc ? x - y : y - x;
        }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach((r) => body.appendChild(r));
    }));
    const picks = () => $$(".pick:checked", table).map((c) => c.value);
    table.addEventListener("change", () => { compare.disabled = picks().length < 2; });
    compare.addEventListener("click", () => {
      location.href = "/compare?" + picks().map((n) => "run=" + encodeURIComponent(n)).join("&");
    });
    // Statuses change while runs train: refresh them every 10 s.
    setInterval(async () => {
      try {
        const data = await api("GET", "/ui/api/runs");
        for (const r of data.runs) {
          const tr = body.querySelector(`tr[data-name="${CSS.escape(r.name)}"]`);
          if (tr && tr.dataset.status !== r.status) { tr.dataset.status = r.status; setBadge($(".status", tr), r.status); }
        }
      } catch (e) { /* the next tick tries again */ }
    }, 10000);
  }

  // ---- curves from metrics.jsonl lines ----
  function curveStore() {
    const series = {};  // name -> Map(step -> value); a resumed run's replayed steps replace what was written
    const add = (lines) => {
      for (const r of lines) {
        if (typeof r.step !== "number" || r.event || r.error) continue;
        for (const [k, v] of Object.entries(r)) {
          if (["step", "epoch", "tokens", "elapsed_s", "tokens_per_s", "grad_norm"].includes(k)) continue;
          if (typeof v !== "number" || !isFinite(v)) continue;
          (series[k] = series[k] || new Map()).set(r.step, v);
        }
      }
    };
    const points = (k) => series[k] ? Array.from(series[k].entries()).sort((a, b) => a[0] - b[0]) : [];
    return { add, points, keys: () => Object.keys(series) };
  }

  function drawRunCurves(store) {
    const C = window.tsCharts;
    C.lineChart($("#chart-loss"), [
      { name: "train loss", points: store.points("loss") },
      { name: "validation loss", points: store.points("val_loss"), dots: true },
    ], { title: "Loss", xLabel: "step", empty: "no steps logged yet" });
    if (store.points("lr").length) C.lineChart($("#chart-lr"), [{ name: "learning rate", points: store.points("lr") }], { title: "Learning rate", xLabel: "step", height: 160 });
    const extra = store.keys().filter((k) => !["loss", "val_loss", "lr"].includes(k));
    if (extra.length) C.lineChart($("#chart-extra"), extra.map((k) => ({ name: k, points: store.points(k), dots: k.startsWith("val_") })), { title: "Other logged metrics", xLabel: "step" });
  }

  function runPage(name, jobId) {
    const store = curveStore();
    let offset = 0, timer = null;
    const tick = async () => {
      try {
        const data = await api("GET", `/ui/api/runs/${encodeURIComponent(name)}/metrics?offset=${offset}`);
        if (data.offset < offset) { location.reload(); return; }  // the run was overwritten: start again
        offset = data.offset;
        store.add(data.lines);
        drawRunCurves(store);
        setBadge($("#run-status"), data.status);
        const live = data.status === "training" || (data.job && ["running", "stopping"].includes(data.job.state));
        if (data.job) {
          $("#job").classList.remove("hidden");
          setBadge($("#job-state"), data.job.state);
          $("#job-command").textContent = data.job.command.join(" ");
          $("#job-log").textContent = data.job.log_tail;
          $("#job-log").scrollTop = 1e9;
          $("#job").dataset.job = data.job.id;
          $("#stop").disabled = data.job.state !== "running";
        }
        if (!live && timer) { clearInterval(timer); timer = null; if (data.lines.length || data.job) setTimeout(() => location.reload(), 800); }
        if (live && !timer) timer = setInterval(tick, 3000);
      } catch (e) { /* keep the last drawing */ }
    };
    tick();
    const stop = $("#stop");
    if (stop) stop.addEventListener("click", async () => {
      stop.disabled = true;
      try { await api("POST", `/ui/api/jobs/${$("#job").dataset.job}/stop`); } catch (e) { alert(e.message); }
      tick();
    });
    const serve = $("#serve-run");
    if (serve) serve.addEventListener("click", async () => {
      try { await api("POST", "/ui/api/playground", { run: name }); location.href = "/playground"; }
      catch (e) { alert(e.message); }
    });
  }

  // ---- compare ----
  async function comparePage(names) {
    const train = [], val = [];
    for (const [i, n] of names.entries()) {
      const store = curveStore();
      let offset = 0;
      for (;;) {  // read the whole file (the API pages long files)
        const data = await api("GET", `/ui/api/runs/${encodeURIComponent(n)}/metrics?offset=${offset}`);
        store.add(data.lines);
        if (!data.lines.length || data.offset === offset) break;
        offset = data.offset;
      }
      const color = window.tsCharts.PALETTE[i % window.tsCharts.PALETTE.length];
      train.push({ name: n, points: store.points("loss"), color });
      val.push({ name: n, points: store.points("val_loss"), color, dots: true });
    }
    window.tsCharts.lineChart($("#compare-train"), train, { title: "Train loss", xLabel: "step" });
    window.tsCharts.lineChart($("#compare-val"), val, { title: "Validation loss", xLabel: "step" });
  }

  // ---- start a run ----
  function startPage() {
    const button = $("#start"), error = $("#start-error");
    button.addEventListener("click", async () => {
      const source = $("input[name=source]:checked").value;
      const body = {
        config: source === "config" ? $("#config").value.trim() : null,
        preset: source === "preset" ? $("#preset").value : null,
        overrides: $("#overrides").value.split("\n").map((s) => s.trim()).filter(Boolean),
        mode: $("#mode").value,
      };
      button.disabled = true;
      error.classList.add("hidden");
      try {
        const job = await api("POST", "/ui/api/jobs", body);
        location.href = `/runs/${encodeURIComponent(job.run)}`;
      } catch (e) {
        error.textContent = e.message;
        error.classList.remove("hidden");
        button.disabled = false;
      }
    });
  }

  // ---- playground ----
  async function readStream(res, onText) {
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffer = "", id = null, finish = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
        if (!data || data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "generation failed");
        id = chunk.id || id;
        for (const c of chunk.choices || []) {
          if (c.delta && c.delta.content) onText(c.delta.content);
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
    }
    return { id, finish };
  }

  function playground(slot) {
    const ids = { a: null, b: null };
    const note = (text) => { $("#feedback-note").textContent = text; };
    const setFeedbackEnabled = (side, on) => {
      $$(`#side-${side} .thumb, #side-${side} .rating`).forEach((b) => { b.disabled = !on; b.classList.remove("chosen"); });
    };
    const loadModels = async () => {
      const data = await api("GET", "/v1/models");
      const names = data.data.map((m) => m.id);
      for (const [i, side] of ["a", "b"].entries()) {
        const sel = $(`#model-${side}`), keep = sel.value;
        sel.innerHTML = "";
        for (const n of names) { const o = document.createElement("option"); o.textContent = n; sel.appendChild(o); }
        sel.value = names.includes(keep) ? keep : names[Math.min(i, names.length - 1)] || "";
      }
      $("#send").disabled = !names.length;
      $("#send-note").textContent = names.length ? "" : "no model served yet: load a run above";
    };
    const watchSlot = async () => {
      const s = await api("GET", "/ui/api/playground");
      $("#slot-target").textContent = s.target || "nothing yet";
      setBadge($("#slot-state"), s.state);
      $("#slot-store").textContent = s.store ? "log: " + s.store : "";
      $("#slot-error").textContent = s.error || "";
      $("#slot-error").classList.toggle("hidden", !s.error);
      if (s.state === "loading") { setTimeout(watchSlot, 1500); return; }
      await loadModels();
    };
    $("#serve").addEventListener("click", async () => {
      try { await api("POST", "/ui/api/playground", { run: $("#serve-choice").value }); }
      catch (e) { $("#slot-error").textContent = e.message; $("#slot-error").classList.remove("hidden"); return; }
      watchSlot();
    });
    const ask = async (side, messages) => {
      const out = $(`#answer-${side}`);
      out.textContent = "";
      out.classList.add("waiting");
      ids[side] = null;
      setFeedbackEnabled(side, false);
      $(`#id-${side}`).textContent = "";
      try {
        const res = await fetch("/v1/chat/completions", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            model: $(`#model-${side}`).value, messages, stream: true,
            max_tokens: +$("#max-tokens").value || 96, temperature: +$("#temperature").value || 0,
          }),
        });
        if (!res.ok) { const d = await res.json(); throw new Error(d.error ? d.error.message : res.statusText); }
        const { id, finish } = await readStream(res, (t) => { out.textContent += t; });
        out.classList.remove("waiting");
        ids[side] = id;
        $(`#id-${side}`).textContent = `${id} · ${finish}`;
        setFeedbackEnabled(side, true);
      } catch (e) {
        out.classList.remove("waiting");
        out.textContent = "error: " + e.message;
      }
    };
    $("#send").addEventListener("click", async () => {
      const text = $("#prompt").value.trim();
      if (!text) { $("#send-note").textContent = "write a message first"; return; }
      const messages = [];
      if ($("#system").value.trim()) messages.push({ role: "system", content: $("#system").value.trim() });
      messages.push({ role: "user", content: text });
      $("#send").disabled = true;
      $$(".versus-btn").forEach((b) => { b.disabled = true; b.classList.remove("chosen"); });
      note("");
      await Promise.all([ask("a", messages), ask("b", messages)]);
      $("#send").disabled = false;
      $$(".versus-btn").forEach((b) => { b.disabled = !(ids.a && ids.b); });
    });
    const feedback = async (body, button, text) => {
      try {
        await api("POST", "/v1/feedback", body);
        if (button) button.classList.add("chosen");
        note(text);
      } catch (e) { note("feedback not recorded: " + e.message); }
    };
    $$(".thumb").forEach((b) => b.addEventListener("click", () => {
      const side = b.dataset.side;
      feedback({ request_id: ids[side], kind: "thumbs", value: b.dataset.value }, b, `recorded: ${side.toUpperCase()} thumbs ${b.dataset.value}`);
    }));
    $$(".rating").forEach((s) => s.addEventListener("change", () => {
      if (!s.value) return;
      const side = s.dataset.side;
      feedback({ request_id: ids[side], kind: "rating", value: +s.value }, null, `recorded: ${side.toUpperCase()} rated ${s.value}/5`);
    }));
    $$(".versus-btn").forEach((b) => b.addEventListener("click", () => {
      const win = b.dataset.winner, lose = win === "a" ? "b" : "a";
      $$(".versus-btn").forEach((x) => { x.disabled = true; });
      feedback({ request_id: ids[win], kind: "comparison", value: ids[lose] }, b, `recorded: ${win.toUpperCase()} is better`);
    }));
    watchSlot();
  }

  // ---- monitoring ----
  function monitorPage(run) {
    const select = $("#monitor-run");
    if (select) select.addEventListener("change", () => { location.href = "/monitor" + (select.value ? "?run=" + encodeURIComponent(select.value) : ""); });
    if (!$("#kpis")) return;
    const fmt = (v, d = 2) => (v === null || v === undefined ? "—" : typeof v === "number" ? (+v.toFixed(d)).toLocaleString() : v);
    const card = (k, v, sub) => `<div class="card"><div class="k">${k}</div><div class="v">${v}</div><div class="small muted">${sub || ""}</div></div>`;
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
    const tick = async () => {
      let s;
      try {
        s = await api("GET", "/ui/api/monitor" + (run ? "?run=" + encodeURIComponent(run) : ""));
        $("#monitor-error").classList.add("hidden");
      } catch (e) {
        $("#monitor-error").textContent = e.message;
        $("#monitor-error").classList.remove("hidden");
        return;
      }
      $("#monitor-updated").textContent = "updated " + new Date().toLocaleTimeString() + " · " + s.store;
      $("#kpis").innerHTML = [
        card("requests", fmt(s.requests, 0), s.first ? new Date(s.first * 1000).toLocaleString() + " →" : ""),
        card("latency p50 / p95", `${fmt(s.latency_p50)} / ${fmt(s.latency_p95)} s`),
        card("tokens in / out", `${fmt(s.prompt_tokens, 0)} / ${fmt(s.completion_tokens, 0)}`),
        card("feedback", fmt(s.feedback, 0)),
        card("languages", Object.keys(s.languages).slice(0, 3).map(esc).join(", ") || "—"),
      ].join("");
      const advice = s.recommendation;
      $("#advice").innerHTML = advice.retrain
        ? `<p class="error"><b>Retrain suggested</b>: ${advice.reasons.map(esc).join("; ")}. <code>tunesmith monitor export-data runs/${esc(run || "NAME")}</code> turns the feedback into training data.</p>`
        : `<p class="ok">No reason to retrain yet (no drift flagged, thumbs-down share under the threshold).</p>`;
      const C = window.tsCharts, w = s.bucket_s;
      C.stackedBars($("#chart-traffic"), s.traffic.map((b) => ({ x: b.start, values: { requests: b.requests } })), { title: `Requests per ${w} s`, time: true, width_x: w, height: 180, empty: "no requests yet" });
      C.lineChart($("#chart-latency"), [
        { name: "p50", points: s.traffic.filter((b) => b.latency_p50 !== null).map((b) => [b.start, b.latency_p50]) },
        { name: "p95", points: s.traffic.filter((b) => b.latency_p95 !== null).map((b) => [b.start, b.latency_p95]), dash: true },
      ], { title: "Latency (s)", time: true, zero: true, height: 200, empty: "no requests yet" });
      C.stackedBars($("#chart-languages"), s.traffic.map((b) => ({ x: b.start, values: b.languages })), { title: "Language mix", time: true, width_x: w, height: 200, names: Object.keys(s.languages), empty: "no requests yet" });
      $("#feedback-table").tBodies[0].innerHTML = Object.entries(s.by_model).map(([m, st]) =>
        `<tr><td>${esc(m)}</td><td class="n">${st.requests}</td><td class="n">${st.feedback}</td><td class="n">${st.thumbs_up || 0}</td><td class="n">${st.thumbs_down || 0}</td>` +
        `<td class="n">${st.negative_rate === null ? "—" : Math.round(st.negative_rate * 100) + "%"}</td><td class="n">${fmt(st.mean_rating)}</td>` +
        `<td class="n">${st.wins || 0} / ${st.losses || 0}</td><td class="n">${st.correction || 0}</td></tr>`).join("");
      const models = Object.entries(s.by_model);
      C.stackedBars($("#chart-feedback"), models.map(([m, st], i) => ({
        x: i, values: { "thumbs up": st.thumbs_up || 0, "thumbs down": st.thumbs_down || 0, "side-by-side wins": st.wins || 0, "side-by-side losses": st.losses || 0, ratings: st.rating || 0, corrections: st.correction || 0 },
      })), { title: "Feedback per served model", labels: models.map(([m]) => m), height: 200, empty: "no requests yet" });
      const drift = Object.entries(s.drift_series || {}).map(([name, points]) => ({ name, points, dots: true }));
      if (drift.length) {
        const span = drift.flatMap((d) => d.points.map((p) => p[0]));
        drift.push({ name: "threshold", points: [[Math.min(...span), 1], [Math.max(...span), 1]], color: "#a33b20", dash: true });
      }
      C.lineChart($("#chart-drift"), drift, { title: "Drift statistics ÷ their thresholds (over 1: alert)", time: true, zero: true, height: 220, empty: "no drift checks yet" });
      $("#drift-table").tBodies[0].innerHTML = s.drift_checks.slice().reverse().map((c) =>
        `<tr><td>${new Date(c.time * 1000).toLocaleString()}</td><td class="n">${c.rows}</td><td><span class="badge ${c.drifted ? "failed" : "evaluated"}">${c.drifted ? "drift" : "no drift"}</span></td><td class="small">${c.alerts.map(esc).join("<br>")}</td></tr>`).join("")
        || `<tr><td colspan="4" class="muted">no drift checks yet</td></tr>`;
    };
    tick();
    setInterval(tick, 10000);
  }

  return { runsTable, runPage, comparePage, startPage, playground, monitorPage, api };
})();
window.tsUi = tsUi;
