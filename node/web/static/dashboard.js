// The swarm dashboard: draws what the node's JSON API (or, in an exported report, the inlined
// data) says. Every peer string reaches the page as a text node, never as HTML.
"use strict";
(function () {
  const EMBED_ELEMENT = document.getElementById("swarm-data");
  const EMBED = EMBED_ELEMENT ? JSON.parse(EMBED_ELEMENT.textContent) : null;
  const COLORS = ["#4e79a7", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
    "#ff9da7", "#bab0ac", "#e15759", "#17becf"];
  const KEPT = "#2ca02c";
  const STATUS_NAMES = { b: "baseline", k: "keep", d: "discard", f: "failed", u: "unverified" };
  const app = document.getElementById("app");
  const live = document.getElementById("live");
  const shared = { charts: [], cy: null, page: null, version: null, errors: [] };
  window.swarmDashboard = shared;
  let timer = null;
  let generation = 0;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const colorOf = (index) => COLORS[index % COLORS.length];
  const short = (id) => (id ? String(id).slice(0, 10) : "-");
  // Peer ids all begin "12D3KooW": their ends tell them apart.
  const peer = (id) => (!id ? "-" : String(id).length > 20 ? "…" + String(id).slice(-8) : String(id));
  const num = (v) => (v === null || v === undefined ? "-" : Number(v).toPrecision(6).replace(/\.?0+$/, ""));
  const signed = (v) => (v === null || v === undefined ? "" : v === 0 ? "0" : (v > 0 ? "+" : "") + Number(v).toPrecision(4));
  const when = (s) => (s ? new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19) : "-");
  const link = (href, text) => el("a", { href }, text);
  const problemLink = (id, text) => link("#/problem/" + encodeURIComponent(id), text);

  async function api(path) {
    if (EMBED) return embedded(path);
    const response = await fetch(path, { headers: { accept: "application/json" } });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(path + " answered " + response.status);
    return response.json();
  }

  function embedded(path) {
    const [base, query] = path.split("?");
    const params = new URLSearchParams(query || "");
    const found = EMBED.responses[base];
    if (found === undefined) return null;
    if (base.endsWith("/points") && Number(params.get("after") || 0) > 0) {
      return { next: found.next, n: [], t: [], y: [], a: [], s: [], authors: found.authors };
    }
    if (!base.endsWith("/changelog")) return found;
    const status = params.get("status") || "";
    const author = params.has("author") ? Number(params.get("author")) : -1;
    const text = (params.get("q") || "").toLowerCase();
    const rows = found.rows.filter((r) => (!status || r.status === status) &&
      (author < 0 || r.author_index === author) &&
      (!text || (r.mutation_kind + "\n" + r.description + "\n" + r.hypothesis).toLowerCase().includes(text)));
    const offset = Number(params.get("offset") || 0);
    const limit = Number(params.get("limit") || 50);
    const next = offset + limit < rows.length ? offset + limit : null;
    return { rows: rows.slice(offset, offset + limit), offset, next, matching: rows.length, total: found.total };
  }

  function clearCharts() {
    for (const chart of shared.charts) chart.destroy();
    shared.charts = [];
    if (shared.cy) shared.cy.destroy();
    shared.cy = null;
  }

  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/");
    return { page: parts[0] || "overview", id: parts[1] ? decodeURIComponent(parts[1]) : null };
  }

  async function render() {
    generation += 1;
    const mine = generation;
    clearCharts();
    app.replaceChildren(el("p", { class: "empty" }, "loading…"));
    const where = route();
    const pages = { overview: overviewPage, problem: problemPage, dag: dagPage,
      playbook: playbookPage, simulation: simulationPage };
    const make = pages[where.page] || overviewPage;
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle(
      "here", a.getAttribute("href") === "#/" + (where.page === "overview" ? "" : where.page)));
    try {
      const page = await make(where.id);
      if (mine !== generation) return;
      shared.page = page;
    } catch (error) {
      if (mine === generation) showError(error);
    }
  }

  function showError(error) {
    shared.errors.push(String(error));
    app.replaceChildren(el("p", { class: "error" }, "Cannot show this page: " + error.message));
  }

  async function poll() {
    timer = null;
    try {
      const version = await api("/api/version");
      if (version && version.version !== shared.version) {
        const first = shared.version === null;
        shared.version = version.version;
        if (!first && shared.page && shared.page.update) await shared.page.update();
      }
      live.textContent = "live · " + new Date().toLocaleTimeString();
      const attempts = version ? version.attempts : 0;
      schedule(attempts < 1000 ? 2000 : attempts < 10000 ? 5000 : 10000);
    } catch (error) {
      live.textContent = "offline: retrying";
      schedule(10000);
    }
  }
  function schedule(ms) { if (!EMBED && timer === null) timer = setTimeout(poll, ms); }

  function table(headers, rows, attrs) {
    return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }
  function section(title, ...children) { return el("section", {}, el("h2", {}, title), ...children); }

  // ---- overview ---------------------------------------------------------------------------
  async function overviewPage() {
    const box = el("div");
    app.replaceChildren(el("h1", {}, "Overview"), box);
    const update = async () => {
      const data = await api("/api/overview");
      const problems = data.problems.map((p) => el("tr", {},
        el("td", {}, problemLink(p.id, p.name)), el("td", {}, (p.direction === "maximize" ? "↑ " : "↓ ") + p.metric),
        el("td", { class: "num" }, num(p.baseline)), el("td", { class: "num best" }, num(p.best)),
        el("td", { class: "num" }, num(p.target)), el("td", { class: "num" }, p.attempts),
        el("td", { class: "num" }, p.nodes), el("td", { class: "num" }, p.per_minute)));
      const peers = Object.entries(data.peers).map(([name, row]) => el("tr", {},
        el("td", { class: "mono" }, peer(name)), el("td", { class: "num" }, Number(row.standing).toFixed(2)),
        el("td", { class: "num" }, row.verified), el("td", { class: "num" }, row.pending),
        el("td", { class: "num" + (row.disputed ? " bad" : "") }, row.disputed),
        el("td", {}, row.ignored ? "ignored" : "")));
      box.replaceChildren(
        el("p", { class: "meta" }, "node ", el("span", { class: "mono" }, peer(data.me)), " · ",
          data.records + " records"),
        section("Problems", problems.length ? table(["problem", "metric", "baseline", "best (verified)",
          "target", "attempts", "nodes", "per minute"], problems, { id: "problems" })
          : el("p", { class: "empty" }, "No problem yet: pose one (swarm pose) or join a swarm.")),
        section("Peers", peers.length ? table(["peer", "standing", "verified", "pending", "disputed", ""], peers)
          : el("p", { class: "empty" }, "No peer's claims held yet.")));
    };
    await update();
    return { update };
  }

  // ---- problem ----------------------------------------------------------------------------
  async function problemPage(problemId) {
    const base = "/api/problem/" + encodeURIComponent(problemId);
    const summary = await api(base);
    if (!summary) { app.replaceChildren(el("p", { class: "empty" }, "No such problem here.")); return null; }
    const head = el("div");
    const scoreBox = el("div", { id: "score-chart", class: "chart" });
    const ratesBox = el("div", { id: "rates-chart", class: "chart" });
    const logBox = el("div", { id: "changelog" });
    const bestBox = el("div", { id: "best" });
    app.replaceChildren(head,
      section("Score over time", el("p", { class: "legend" }, "every attempt a point, one colour per node; ",
        el("span", { style: "color:" + KEPT }, "● kept"), " · — best so far"), scoreBox),
      section("Checklist pass rate over time", ratesBox),
      section("Changelog", logBox), section("Best strategy", bestBox));
    const points = { n: [], t: [], y: [], a: [], s: [], next: 0, authors: [] };
    let score = null;
    let rates = null;
    const filters = { status: "", author: -1, q: "", offset: 0 };
    let current = summary;

    const drawHead = () => {
      const s = current;
      head.replaceChildren(el("h1", {}, s.name),
        el("p", { class: "meta" }, (s.direction === "maximize" ? "maximise " : "minimise ") + s.metric +
          " · baseline " + num(s.baseline) + " · best " + num(s.best) +
          (s.target === null ? "" : " · target " + num(s.target)) + " · " + s.attempts + " attempts · " +
          Object.entries(s.counts).map(([k, v]) => v + " " + k).join(", ")),
        el("p", { class: "meta" }, s.authors.map((a, i) => el("span", { class: "node", style: "color:" + colorOf(i) },
          "● " + peer(a.id) + (a.me ? " (this node)" : "")))),
        el("p", {}, link("#/dag/" + encodeURIComponent(s.id), "Research DAG of this problem →")));
    };

    const drawScore = () => {
      const order = points.t.map((_, i) => i).filter((i) => points.y[i] !== null);
      order.sort((i, j) => points.t[i] - points.t[j] || points.n[i] - points.n[j]);
      const x = order.map((i) => points.t[i]);
      const authors = points.authors.length || 1;
      const series = [];
      for (let k = 0; k < authors; k++) series.push(order.map((i) => (points.a[i] === k ? points.y[i] : null)));
      const kept = order.map((i) => (points.s[i] === "k" || points.s[i] === "b" ? points.y[i] : null));
      const better = (a, b) => (current.direction === "maximize" ? a > b : a < b);
      let best = null;
      const line = order.map((i) => {
        if ((points.s[i] === "k" || points.s[i] === "b") && (best === null || better(points.y[i], best))) best = points.y[i];
        return best;
      });
      const data = [x, ...series, kept, line];
      scoreBox.dataset.points = String(x.length);
      if (score && score.series.length === data.length) { score.setData(data); return; }
      if (score) { score.destroy(); shared.charts = shared.charts.filter((c) => c !== score); }
      const dots = (color, size) => ({ stroke: color, fill: color, paths: () => null,
        points: { show: true, size, space: 0, stroke: color, fill: color } });
      const opts = {
        width: Math.max(320, scoreBox.clientWidth || 800), height: 300,
        scales: { x: { time: true } },
        series: [{},
          ...series.map((_, k) => ({ label: "node " + peer(points.authors[k]), ...dots(colorOf(k), 5) })),
          { label: "kept", ...dots(KEPT, 9) },
          { label: "best so far", stroke: "#111", width: 2, spanGaps: true,
            paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } }],
      };
      score = new uPlot(opts, data, scoreBox);
      shared.charts.push(score);
      shared.score = score;
    };

    const drawRates = (data) => {
      const names = Object.keys(data.items);
      ratesBox.dataset.items = String(names.length);
      if (!names.length) { ratesBox.replaceChildren(el("p", { class: "empty" }, "No checklist results yet.")); return; }
      const series = [data.t, ...names.map((n) => data.items[n])];
      if (rates && rates.series.length === series.length) { rates.setData(series); return; }
      if (rates) { rates.destroy(); shared.charts = shared.charts.filter((c) => c !== rates); }
      ratesBox.replaceChildren();
      rates = new uPlot({
        width: Math.max(320, ratesBox.clientWidth || 800), height: 220,
        scales: { x: { time: true }, y: { range: [0, 1] } },
        series: [{}, ...names.map((n, k) => ({ label: n, stroke: colorOf(k + 3), width: 2, spanGaps: true }))],
      }, series, ratesBox);
      shared.charts.push(rates);
      if (data.sampled) ratesBox.appendChild(el("p", { class: "legend" }, "estimated from a sample of each period's attempts"));
    };

    const diffBlock = (text) => el("pre", { class: "diff" }, (text || "(no change)").split("\n").map((line) =>
      el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "" }, line + "\n")));

    const drawBest = () => {
      const best = current.best_experiment;
      if (!best) { bestBox.replaceChildren(el("p", { class: "empty" }, "No verified best yet.")); return; }
      bestBox.replaceChildren(
        el("p", {}, "score ", el("b", {}, num(best.score)), " · ", best.mutation_kind, " by ",
          el("span", { class: "mono" }, peer(best.author)), " · ", el("span", { class: "mono" }, short(best.id))),
        el("p", {}, best.description), el("h3", {}, "Diff against the baseline"), diffBlock(best.diff),
        el("details", {}, el("summary", {}, "Whole strategy"),
          Object.entries(best.strategy).map(([path, source]) => el("div", {}, el("h4", { class: "mono" }, path),
            el("pre", { class: "code" }, source)))));
    };

    const showAttempt = async (row, tr) => {
      const open = tr.nextSibling && tr.nextSibling.classList && tr.nextSibling.classList.contains("detail");
      if (open) { tr.nextSibling.remove(); return; }
      const record = await api("/api/record/" + row.id);
      if (!record) return;
      const f = record.fields;
      const cell = el("td", { colspan: "10" },
        el("p", {}, "outcome ", el("b", {}, f.status), " · fuel " + f.fuel + " · ",
          record.verdict ? record.verdict.verdict + " (" + record.verdict.matches + " replays)" : ""),
        f.hypothesis ? el("p", {}, "hypothesis: ", f.hypothesis) : null,
        Object.keys(f.items).length ? el("p", {}, Object.entries(f.items).map(([k, v]) =>
          el("span", { class: v ? "pass" : "fail" }, (v ? "✓ " : "✗ ") + k + "  "))) : null,
        diffBlock(record.diff), f.stderr_tail ? el("pre", { class: "stderr" }, f.stderr_tail) : null);
      tr.after(el("tr", { class: "detail" }, cell));
    };

    const drawLog = async () => {
      const params = new URLSearchParams({ offset: filters.offset, limit: 50 });
      if (filters.status) params.set("status", filters.status);
      if (filters.author >= 0) params.set("author", filters.author);
      if (filters.q) params.set("q", filters.q);
      const page = await api(base + "/changelog?" + params);
      const rows = page.rows.map((r) => {
        const tr = el("tr", { class: "attempt " + r.status, "data-id": r.id },
          el("td", { class: "num" }, r.n + 1), el("td", {}, when(r.t)), el("td", { class: "num" }, num(r.score)),
          el("td", { class: "num" }, signed(r.delta)), el("td", {}, r.status), el("td", {}, r.mutation_kind),
          el("td", { class: "text" }, r.description), el("td", { class: "text" }, r.hypothesis),
          el("td", { class: "mono", style: "color:" + colorOf(r.author_index) }, peer(r.author)),
          el("td", {}, r.verdict + (r.verifications ? " (" + r.verifications + ")" : "")));
        tr.addEventListener("click", () => showAttempt(r, tr));
        return tr;
      });
      const statusSelect = el("select", { id: "filter-status", onchange: (e) => { filters.status = e.target.value; filters.offset = 0; drawLog(); } },
        ["", "baseline", "keep", "discard", "failed", "unverified"].map((s) => el("option", { value: s }, s || "any status")));
      statusSelect.value = filters.status;
      const authorSelect = el("select", { id: "filter-author", onchange: (e) => { filters.author = Number(e.target.value); filters.offset = 0; drawLog(); } },
        el("option", { value: "-1" }, "any node"), current.authors.map((a, i) => el("option", { value: String(i) }, peer(a.id))));
      authorSelect.value = String(filters.author);
      const search = el("input", { id: "filter-text", type: "search", placeholder: "search change text", value: filters.q,
        onchange: (e) => { filters.q = e.target.value; filters.offset = 0; drawLog(); } });
      const pager = el("p", { class: "pager" },
        filters.offset > 0 ? el("button", { onclick: () => { filters.offset = Math.max(0, filters.offset - 50); drawLog(); } }, "← newer") : null,
        " rows " + (page.rows.length ? filters.offset + 1 : 0) + "–" + (filters.offset + page.rows.length) +
        (page.matching === null ? "" : " of " + page.matching) + " ",
        page.next !== null ? el("button", { onclick: () => { filters.offset = page.next; drawLog(); } }, "older →") : null);
      logBox.replaceChildren(el("div", { class: "filters" }, statusSelect, authorSelect, search), pager,
        table(["#", "time", "score", "Δ", "status", "change", "description", "hypothesis", "author", "verifications"],
          rows, { id: "changelog-table" }), rows.length ? null : el("p", { class: "empty" }, "No attempt matches."));
    };

    const fetchPoints = async () => {
      const fresh = await api(base + "/points?after=" + points.next);
      for (const key of ["n", "t", "y", "a", "s"]) points[key].push(...fresh[key]);
      points.next = fresh.next;
      points.authors = fresh.authors;
      scoreBox.dataset.total = String(fresh.total === undefined ? points.n.length : fresh.total);
    };

    const update = async () => {
      current = (await api(base)) || current;
      drawHead();
      await fetchPoints();
      drawScore();
      drawRates(await api(base + "/rates"));
      if (filters.offset === 0) await drawLog();
      drawBest();
    };
    drawHead();
    await fetchPoints();
    drawScore();
    drawRates(await api(base + "/rates"));
    await drawLog();
    drawBest();
    return { update };
  }

  // ---- research DAG -----------------------------------------------------------------------
  async function dagPage(problemId) {
    const overview = await api("/api/overview");
    const problems = overview.problems;
    if (!problems.length) { app.replaceChildren(el("h1", {}, "Research DAG"), el("p", { class: "empty" }, "No problem yet.")); return null; }
    const chosen = problemId || problems[0].id;
    const picker = el("select", { id: "dag-problem", onchange: (e) => { location.hash = "#/dag/" + encodeURIComponent(e.target.value); } },
      problems.map((p) => el("option", { value: p.id }, p.name)));
    picker.value = chosen;
    const canvas = el("div", { id: "dag", class: "graph" });
    const side = el("aside", { id: "record" }, el("p", { class: "empty" }, "Click a node to see its record and lineage."));
    const note = el("p", { class: "meta" });
    app.replaceChildren(el("h1", {}, "Research DAG"), el("p", {}, picker, " ", note), el("div", { class: "split" }, canvas, side));
    const base = "/api/problem/" + encodeURIComponent(chosen);
    const elements = (g) => [
      ...g.nodes.map((n) => ({ group: "nodes", data: { id: n.id, kind: n.kind, label: n.label,
        color: n.kind === "experiment" ? (n.best ? "#d4a017" : n.status === "keep" || n.status === "baseline" ? KEPT : colorOf(n.author)) : "#555",
        status: n.status || "" }, position: { x: n.x, y: n.y } })),
      ...g.edges.map((e, i) => ({ group: "edges", data: { id: "e" + i, source: e.source, target: e.target, rel: e.rel } }))];
    let g = await api(base + "/graph");
    note.textContent = g.shown + " of " + g.experiments + " experiments shown (kept, newest, the best's lineage)";
    const cy = cytoscape({
      container: canvas, elements: elements(g), layout: { name: "preset" },
      style: [
        { selector: "node", style: { "background-color": "data(color)", label: "data(label)", "font-size": 9, width: 14, height: 14, color: "#333" } },
        { selector: "node[kind = 'problem']", style: { shape: "round-rectangle", width: 30, height: 20, "background-color": "#222" } },
        { selector: "node[kind = 'hypothesis']", style: { shape: "diamond", "background-color": "#8e44ad" } },
        { selector: "node[kind = 'pattern']", style: { shape: "hexagon", "background-color": "#16a085" } },
        { selector: "node[kind = 'verdict']", style: { shape: "tag", "background-color": "#c0392b" } },
        { selector: "node[status = 'unverified']", style: { "border-width": 2, "border-style": "dashed", "border-color": "#c0392b" } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#000", "border-style": "solid" } },
        { selector: "edge", style: { width: 1, "line-color": "#bbb", "curve-style": "bezier", "target-arrow-shape": "triangle", "target-arrow-color": "#bbb", "arrow-scale": 0.6 } },
        { selector: "edge[rel != 'has_child']", style: { "line-style": "dashed", "line-color": "#9b59b6" } }],
    });
    shared.cy = cy;
    const showRecord = async (id) => {
      const record = await api("/api/record/" + id);
      if (!record) { side.replaceChildren(el("p", { class: "empty" }, "Not held here: " + short(id))); return; }
      const fields = Object.entries(record.fields).map(([k, v]) => [el("dt", {}, k),
        el("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : v === null ? "-" : String(v))]);
      side.replaceChildren(el("h3", {}, record.kind + " ", el("span", { class: "mono" }, short(record.id))),
        el("p", { class: "meta" }, "by ", el("span", { class: "mono" }, peer(record.author))),
        el("dl", { id: "record-fields" }, fields),
        record.lineage ? el("div", {}, el("h4", {}, "Lineage"), el("ol", { class: "lineage" }, record.lineage.map((e) =>
          el("li", {}, el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); select(e.id); } }, short(e.id)),
            " " + num(e.score) + " " + e.mutation_kind)))) : null,
        record.diff !== undefined ? el("details", {}, el("summary", {}, "diff against its parent"),
          el("pre", { class: "diff" }, record.diff || "(no change)")) : null);
      side.dataset.record = record.id;
    };
    const select = (id) => { cy.$(":selected").unselect(); const node = cy.getElementById(id); if (node.length) node.select(); showRecord(id); };
    cy.on("tap", "node", (event) => select(event.target.id()));
    return {
      update: async () => {
        g = await api(base + "/graph");
        note.textContent = g.shown + " of " + g.experiments + " experiments shown (kept, newest, the best's lineage)";
        cy.batch(() => { cy.elements().remove(); cy.add(elements(g)); });
      },
    };
  }

  // ---- playbook ---------------------------------------------------------------------------
  async function playbookPage() {
    const box = el("div");
    app.replaceChildren(el("h1", {}, "Playbook"), box);
    const update = async () => {
      const data = await api("/api/playbook");
      const parts = [];
      if (!data.patterns.length && !data.hypotheses.length) {
        parts.push(el("p", { class: "empty", id: "playbook-empty" }, "No patterns yet. The playbook is derived from " +
          "verified findings as they accumulate; it appears here once a change has helped often enough."));
      }
      for (const status of ["live", "candidate", "retired"]) {
        const rows = data.patterns.filter((p) => p.status === status).map((p) => el("tr", {},
          el("td", {}, p.derived_here ? p.mutation_kind : p.mutation_kind + " · not derived here"), el("td", { class: "text" }, p.text),
          el("td", { class: "num" }, p.supporting), el("td", { class: "num" }, p.contradicting),
          el("td", { class: "num" }, Math.round(100 * p.success_rate) + "%"), el("td", { class: "num" }, signed(p.mean_delta)),
          el("td", {}, p.problems.join(", "))));
        if (rows.length) parts.push(section(status + " patterns", table(["change", "statement", "supporting", "contradicting", "success", "mean Δ", "problems"], rows)));
      }
      const hypotheses = data.hypotheses.map((h) => el("tr", { class: h.state }, el("td", {}, h.mutation_kind),
        el("td", { class: "text" }, h.text), el("td", {}, h.problem), el("td", { class: "num" }, h.tests),
        el("td", {}, h.state), el("td", { class: "text" }, h.verdict || "")));
      if (hypotheses.length) parts.push(section("Hypotheses", table(["change", "hypothesis", "problem", "tests", "outcome", "verdict"], hypotheses)));
      box.replaceChildren(...parts);
    };
    await update();
    return { update };
  }

  // ---- simulation -------------------------------------------------------------------------
  async function simulationPage() {
    const box = el("div");
    app.replaceChildren(el("h1", {}, "Simulation"), box);
    let charts = [];
    const update = async () => {
      const data = await api("/api/simulation");
      const report = data && data.report;
      for (const c of charts) { c.destroy(); shared.charts = shared.charts.filter((x) => x !== c); }
      charts = [];
      if (!report) { box.replaceChildren(el("p", { class: "empty" }, "No simulation in this process: run swarm simulate --dashboard.")); return; }
      const config = report.config;
      const rounds = report.history.map((h) => h.round);
      const best = el("div", { class: "chart", id: "sim-best" });
      const traffic = el("div", { class: "chart", id: "sim-traffic" });
      box.replaceChildren(
        el("p", { class: "meta" }, config.problem.name + " · " + config.nodes + " nodes · " + config.network +
          " network · " + report.rounds_run + " rounds · faults " + JSON.stringify(config.faults)),
        table(["measure", "value"], Object.entries(report.swarm).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v === null ? "-" : String(v))))),
        section("Best score per node and for the swarm, by round", best),
        section("Cumulative messages, replays, disputes and evaluations", traffic));
      if (!rounds.length) return;
      const width = Math.max(320, box.clientWidth || 800);
      charts.push(new uPlot({ width, height: 260, series: [{ label: "round" },
        ...report.nodes.map((n, k) => ({ label: "node " + n.index + (n.liar ? " (liar)" : ""), stroke: n.liar ? "#c33" : colorOf(k), width: 1 })),
        { label: "swarm best", stroke: "#111", width: 3 }] },
        [rounds, ...report.nodes.map((n) => n.best_by_round.slice(0, rounds.length)), report.history.map((h) => h.swarm_best)], best));
      charts.push(new uPlot({ width, height: 220, series: [{ label: "round" },
        { label: "messages", stroke: "#393", width: 2 }, { label: "replays", stroke: "#36c", width: 2 },
        { label: "disputes", stroke: "#c33", width: 2 }, { label: "evaluations", stroke: "#888", width: 2 }] },
        [rounds, ...["messages", "verifications", "disputes", "evaluations"].map((k) => report.history.map((h) => h[k]))], traffic));
      shared.charts.push(...charts);
    };
    await update();
    return { update };
  }

  window.addEventListener("hashchange", render);
  if (EMBED && !location.hash && EMBED.start) history.replaceState(null, "", EMBED.start);
  if (EMBED) live.textContent = "report · " + EMBED.written;
  render().then(() => schedule(0));
})();
