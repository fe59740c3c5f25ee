// "This X Does Not Exist": the page's logic. Plain JavaScript, no libraries, same-origin requests only.
"use strict";

(function () {
  const SEED_MAX = 4294967296;  // seeds are in [0, 2^32)
  const $ = (id) => document.getElementById(id);
  const state = { seed: 0, psi: 0.7, noise: "const", cls: null, trunc: "global", beyond: false, a: 0, b: 1, x: 0,
    steps: 8, edit: [], tx: 0, ty: 0, rot: 0 };
  const EDIT_RANGE = 3;  // the sliders' range, in units of each direction's spread (the API takes up to 5)
  const MOVE = { tx: 0.5, ty: 0.5, rot: 180 };  // the move sliders' ranges (StyleGAN3 networks)
  let info = null;

  // ---- helpers ---------------------------------------------------------------------------------------------
  function randomSeed() {
    const u = new Uint32Array(1);
    crypto.getRandomValues(u);
    return u[0];
  }
  function parseSeed(text) {
    if (text === null || !/^\s*\d+\s*$/.test(text)) return null;
    const n = Number(text);
    return Number.isSafeInteger(n) && n >= 0 && n < SEED_MAX ? n : null;
  }
  function parseIntIn(text, lo, hi) {
    if (text === null || !/^\s*-?\d+\s*$/.test(text)) return null;
    const n = Number(text);
    return n >= lo && n <= hi ? n : null;
  }
  function fmtPsi(p) { return (Math.round(p * 100) / 100).toFixed(2); }
  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text || "\u00a0";
    s.classList.toggle("error", !!isError);
  }
  function debounce(fn, ms) {
    let t = null;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }

  // ---- image slots: fetch → blob → object URL, newest request wins, 503 retried ------------------------------
  class Slot {
    constructor(imgId, frameId) {
      this.img = $(imgId);
      this.frame = $(frameId);
      this.ctrl = null;
      this.objectUrl = null;
      this.gen = 0;
      this.onload = null;
    }
    async load(url, attempt = 0) {
      const gen = ++this.gen;
      if (this.ctrl) this.ctrl.abort();
      const ctrl = (this.ctrl = new AbortController());
      this.frame.classList.add("loading");
      try {
        const r = await fetch(url, { signal: ctrl.signal });
        if (r.status === 503 && attempt < 6) {
          const wait = Math.min(5, Number(r.headers.get("Retry-After")) || 1) * 1000 * (1 + attempt / 2);
          setStatus("The server is busy; retrying\u2026");
          await new Promise((res) => setTimeout(res, wait));
          if (gen === this.gen) return this.load(url, attempt + 1);
          return;
        }
        if (!r.ok) {
          let msg = `HTTP ${r.status}`;
          try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
          throw new Error(msg);
        }
        const blob = await r.blob();
        if (gen !== this.gen) return;  // a newer request was made meanwhile
        const obj = URL.createObjectURL(blob);
        await new Promise((res) => {
          this.img.onload = res;
          this.img.onerror = res;
          this.img.src = obj;
        });
        if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
        this.objectUrl = obj;
        this.img.dataset.src = url;
        this.img.dataset.bytes = String(blob.size);
        this.frame.classList.remove("loading");
        if ($("status").textContent.startsWith("The server is busy")) setStatus("");
        if (this.onload) this.onload(obj);
      } catch (e) {
        if (e.name === "AbortError") return;
        if (gen === this.gen) {
          this.frame.classList.remove("loading");
          setStatus(e.message, true);
        }
      }
    }
  }

  const slots = {};

  function common() {
    const p = { psi: fmtPsi(state.psi), noise: state.noise };
    if (info.conditional) { p["class"] = String(state.cls); p.trunc = state.trunc; }
    p.v = info.model_id;
    return p;
  }
  function apiUrl(path, params) {
    return path + "?" + new URLSearchParams(params).toString();
  }

  // The edit amounts as the API takes them: trailing zeros dropped, "" when there is no edit.
  function editParam() {
    const e = state.edit.map((v) => String(Math.round(v * 100) / 100));
    while (e.length && Number(e[e.length - 1]) === 0) e.pop();
    return e.join(",");
  }

  // The move of a StyleGAN3 network's image as the API takes it: only the non-zero parts.
  function moveParams() {
    const p = {};
    if (state.tx) p.translate_x = String(state.tx);
    if (state.ty) p.translate_y = String(state.ty);
    if (state.rot) p.rotate = String(state.rot);
    return p;
  }

  const render = {
    main() {
      const edit = editParam();
      const move = moveParams();
      slots.main.load(apiUrl("/api/image", { seed: state.seed, ...common(), ...(edit ? { edit } : {}), ...move }));
      $("main-caption").textContent = `seed ${state.seed} \u00b7 \u03c8 ${fmtPsi(state.psi)} \u00b7 noise ${state.noise}` +
        (info.conditional ? ` \u00b7 class ${state.cls}` : "") + (edit ? ` \u00b7 edit ${edit}` : "") +
        (Object.keys(move).length ? ` \u00b7 moved ${state.tx},${state.ty} \u00b7 ${state.rot}\u00b0` : "");
    },
    a() { slots.a.load(apiUrl("/api/image", { seed: state.a, ...common() })); },
    b() { slots.b.load(apiUrl("/api/image", { seed: state.b, ...common() })); },
    mix() {
      slots.mix.load(apiUrl("/api/mix", { seed_a: state.a, seed_b: state.b, crossover: state.x, ...common() }));
      const n = info.num_ws;
      const span = (lo, hi) => lo === hi ? `style ${lo}` : `styles ${lo}\u2013${hi}`;
      $("mix-caption").textContent = state.x === 0 ? "all styles from B" : state.x === n ? "all styles from A"
        : `${span(0, state.x - 1)} from A, ${span(state.x, n - 1)} from B`;
    },
    interp() {
      slots.interp.load(apiUrl("/api/interp", { seed_a: state.a, seed_b: state.b, steps: state.steps, ...common() }));
    },
  };
  function renderAll() { render.main(); render.a(); render.b(); render.mix(); render.interp(); }

  // ---- URL (the permalink holds the whole state) ---------------------------------------------------------------
  function pageQuery() {
    const p = new URLSearchParams();
    p.set("seed", state.seed);
    p.set("psi", fmtPsi(state.psi));
    if (state.noise !== "const") p.set("noise", state.noise);
    if (info.conditional) p.set("class", state.cls);
    if (state.trunc !== info.default_trunc) p.set("trunc", state.trunc);
    p.set("a", state.a);
    p.set("b", state.b);
    p.set("x", state.x);
    p.set("steps", state.steps);
    if (editParam()) p.set("edit", editParam());
    for (const k of ["tx", "ty", "rot"]) if (state[k]) p.set(k, state[k]);
    return "/?" + p.toString();
  }
  function syncUrl(push) {
    const q = pageQuery();
    if (q !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", q);
    $("permalink").href = q;
  }
  function readUrl() {
    const q = new URLSearchParams(location.search);
    const seed = parseSeed(q.get("seed"));
    state.seed = seed === null ? randomSeed() : seed;
    const psi = q.has("psi") ? Number(q.get("psi")) : NaN;
    state.psi = Number.isFinite(psi) ? Math.min(info.psi_max, Math.max(info.psi_min, psi)) : info.default_psi;
    state.beyond = state.psi < info.slider_psi_min || state.psi > info.slider_psi_max;
    state.trunc = info.conditional && q.get("trunc") === "global" ? "global" : info.default_trunc;
    state.noise = info.noise_modes.includes(q.get("noise")) ? q.get("noise") : "const";
    if (info.conditional) {
      const c = parseIntIn(q.get("class"), 0, info.c_dim - 1);
      state.cls = c === null ? randomSeed() % info.c_dim : c;  // shown in the selector, sent with every request
    }
    const a = parseSeed(q.get("a"));
    const b = parseSeed(q.get("b"));
    state.a = a === null ? state.seed : a;
    state.b = b === null ? randomSeed() : b;
    const x = parseIntIn(q.get("x"), 0, info.num_ws);
    state.x = x === null ? Math.floor(info.num_ws / 2) : x;
    const steps = parseIntIn(q.get("steps"), 2, info.max_steps);
    state.steps = steps === null ? Math.min(8, info.max_steps) : steps;
    const edit = (q.get("edit") || "").split(",").map(Number);
    state.edit = Array.from({ length: info.directions }, (_, k) =>
      Number.isFinite(edit[k]) ? Math.min(EDIT_RANGE, Math.max(-EDIT_RANGE, edit[k])) : 0);
    for (const k of ["tx", "ty", "rot"]) {
      const v = Number(q.get(k));
      state[k] = info.movable && Number.isFinite(v) ? Math.min(MOVE[k], Math.max(-MOVE[k], v)) : 0;
    }
  }
  function setPsiRange() {
    $("psi").min = state.beyond ? info.psi_min : info.slider_psi_min;
    $("psi").max = state.beyond ? info.psi_max : info.slider_psi_max;
  }
  function writeControls() {
    $("seed").value = state.seed;
    $("psi-beyond").checked = state.beyond;
    setPsiRange();
    $("psi").value = state.psi;
    $("psi-out").value = fmtPsi(state.psi);
    for (const r of document.querySelectorAll("input[name=noise]")) r.checked = r.value === state.noise;
    if (info.conditional) $("class").value = String(state.cls);
    $("trunc-class").checked = state.trunc === "class";
    $("seed-a").value = state.a;
    $("seed-b").value = state.b;
    $("crossover").value = state.x;
    $("crossover-out").value = state.x;
    $("steps").value = state.steps;
    $("steps-out").value = state.steps;
    state.edit.forEach((v, k) => { $(`edit-${k}`).value = v; $(`edit-${k}-out`).value = v.toFixed(1); });
    for (const k of ["tx", "ty", "rot"]) {
      $(k).value = state[k];
      $(`${k}-out`).value = k === "rot" ? String(state[k]) : state[k].toFixed(2);
    }
  }
  function buildEditSliders() {
    const box = $("edit-sliders");
    for (let k = 0; k < info.directions; k++) {
      const label = document.createElement("label");
      label.className = "row slider";
      label.append(`Direction ${k + 1}`);
      const input = Object.assign(document.createElement("input"),
        { type: "range", id: `edit-${k}`, min: -EDIT_RANGE, max: EDIT_RANGE, step: 0.1, value: 0 });
      const out = Object.assign(document.createElement("output"), { id: `edit-${k}-out`, value: "0.0" });
      out.htmlFor = input.id;
      label.append(input, out);
      box.append(label);
    }
    $("edits").hidden = info.directions === 0;
  }

  // ---- controls --------------------------------------------------------------------------------------------
  function bindSeedInput(id, key, renders) {
    const el = $(id);
    el.addEventListener("change", () => {
      const s = parseSeed(el.value);
      if (s === null) {
        el.setCustomValidity(`an integer in [0, ${SEED_MAX})`);
        el.reportValidity();
        return;
      }
      el.setCustomValidity("");
      state[key] = s;
      syncUrl(false);
      renders.forEach((f) => f());
    });
  }

  function newImage() {
    state.seed = randomSeed();
    writeControls();
    syncUrl(true);
    render.main();
  }

  function setup() {
    document.title = info.title;
    $("title").textContent = info.title;
    if (info.resolution < 256) document.body.classList.add("pixelated");
    document.documentElement.style.setProperty("--aspect", `${info.width} / ${info.height}`);
    $("beyond-row").hidden = info.psi_min === info.psi_max;
    $("crossover").max = info.num_ws;
    $("steps").max = info.max_steps;
    if (info.conditional) {
      const sel = $("class");
      for (let i = 0; i < info.c_dim; i++) sel.add(new Option(String(i), String(i)));
      $("class-row").hidden = false;
      $("trunc-row").hidden = false;
    }
    const facts = [["model", info.name], ["image", `${info.width}\u00d7${info.height}, ` +
      `${info.channels === 1 ? "grayscale" : "RGB"}`], ["style inputs", info.num_ws],
      ["classes", info.conditional ? info.c_dim : "unconditional"], ["model id", info.model_id]];
    const dl = $("facts");
    for (const [k, v] of facts) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = String(v);
      dl.append(dt, dd);
    }
    if (info.card) $("card").textContent = info.card;
    buildEditSliders();  // shown as text: never parsed as HTML
    $("move").hidden = !info.movable;

    slots.main = new Slot("main-img", "main-frame");
    slots.a = new Slot("a-img", "a-frame");
    slots.b = new Slot("b-img", "b-frame");
    slots.mix = new Slot("mix-img", "mix-frame");
    slots.interp = new Slot("interp-img", "interp-frame");
    slots.main.onload = (obj) => {
      const d = $("download");
      d.href = obj;  // exactly the pixels shown, also for random noise
      d.download = `${info.name}-seed${state.seed}-psi${fmtPsi(state.psi)}.png`;
    };

    $("controls").addEventListener("submit", (e) => e.preventDefault());
    $("new-btn").addEventListener("click", newImage);
    bindSeedInput("seed", "seed", [render.main]);
    bindSeedInput("seed-a", "a", [render.a, render.mix, render.interp]);
    bindSeedInput("seed-b", "b", [render.b, render.mix, render.interp]);
    $("shuffle-a").addEventListener("click", () => {
      state.a = randomSeed(); writeControls(); syncUrl(false); render.a(); render.mix(); render.interp();
    });
    $("shuffle-b").addEventListener("click", () => {
      state.b = randomSeed(); writeControls(); syncUrl(false); render.b(); render.mix(); render.interp();
    });
    const psiChanged = debounce(() => { syncUrl(false); renderAll(); }, 150);
    $("psi").addEventListener("input", () => {
      state.psi = Number($("psi").value);
      $("psi-out").value = fmtPsi(state.psi);
      psiChanged();
    });
    for (const r of document.querySelectorAll("input[name=noise]")) {
      r.addEventListener("change", () => { state.noise = r.value; syncUrl(false); renderAll(); });
    }
    $("class").addEventListener("change", () => { state.cls = Number($("class").value); syncUrl(false); renderAll(); });
    $("trunc-class").addEventListener("change", () => {
      state.trunc = $("trunc-class").checked ? "class" : "global"; syncUrl(false); renderAll();
    });
    $("psi-beyond").addEventListener("change", () => {
      state.beyond = $("psi-beyond").checked;
      const clamped = Math.min(info.slider_psi_max, Math.max(info.slider_psi_min, state.psi));
      const moved = !state.beyond && clamped !== state.psi;
      state.psi = state.beyond ? state.psi : clamped;
      writeControls();
      if (moved) { syncUrl(false); renderAll(); }
    });
    const editChanged = debounce(() => { syncUrl(false); render.main(); }, 120);
    for (let k = 0; k < info.directions; k++) {
      $(`edit-${k}`).addEventListener("input", () => {
        state.edit[k] = Number($(`edit-${k}`).value);
        $(`edit-${k}-out`).value = state.edit[k].toFixed(1);
        editChanged();
      });
    }
    $("edit-reset").addEventListener("click", () => {
      state.edit = state.edit.map(() => 0); writeControls(); syncUrl(false); render.main();
    });
    const moveChanged = debounce(() => { syncUrl(false); render.main(); }, 120);
    for (const k of ["tx", "ty", "rot"]) {
      $(k).addEventListener("input", () => {
        state[k] = Number($(k).value);
        $(`${k}-out`).value = k === "rot" ? String(state[k]) : state[k].toFixed(2);
        moveChanged();
      });
    }
    $("move-reset").addEventListener("click", () => {
      state.tx = state.ty = state.rot = 0; writeControls(); syncUrl(false); render.main();
    });
    const mixChanged = debounce(() => { syncUrl(false); render.mix(); }, 100);
    $("crossover").addEventListener("input", () => {
      state.x = Number($("crossover").value);
      $("crossover-out").value = state.x;
      mixChanged();
    });
    const stepsChanged = debounce(() => { syncUrl(false); render.interp(); }, 150);
    $("steps").addEventListener("input", () => {
      state.steps = Number($("steps").value);
      $("steps-out").value = state.steps;
      stepsChanged();
    });
    document.addEventListener("keydown", (e) => {
      const t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey || (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName) && t.type !== "range")) return;
      if (e.key === "n" || e.key === "N") { e.preventDefault(); newImage(); }
    });
    window.addEventListener("popstate", () => { readUrl(); writeControls(); $("permalink").href = pageQuery(); renderAll(); });

    readUrl();
    writeControls();
    syncUrl(false);
    renderAll();
    document.body.dataset.ready = "1";
  }

  async function start() {
    try {
      const r = await fetch("/api/info");
      if (!r.ok) throw new Error(`cannot read /api/info (HTTP ${r.status})`);
      info = await r.json();
    } catch (e) {
      setStatus(e.message, true);
      return;
    }
    setup();
  }
  start();
})();
