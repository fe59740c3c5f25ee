// The static "This X Does Not Exist": the generator (model.onnx) runs here, with onnxruntime-web's WebAssembly
// back end loaded from ./ort/. The latents come from the seed through mulberry32 and Box–Muller, the same
// numbers as stylegan.serve.static_site.site_normals in Python.
"use strict";

const $ = (id) => document.getElementById(id);
const MORE = 8;
const SEED_MAX = 4294967295;
const state = { session: null, meta: null, constNoise: null, busy: Promise.resolve() };

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normals(seed, n) {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = u(), u2 = u();
    const radius = Math.sqrt(-2 * Math.log(1 - u1));
    out[i] = radius * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = radius * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

function settings() {
  const noise = document.querySelector("input[name=noise]:checked").value;
  const psi = Number($("psi").value);
  const cls = state.meta.c_dim ? Number($("class").value) : null;
  return { noise, psi, cls, tx: Number($("tx").value), ty: Number($("ty").value), rot: Number($("rot").value) };
}

// The Fourier input's matrix that moves the image by (tx, ty) image widths and turns it by rot degrees
// counterclockwise: the inverse of [[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]], as
// stylegan.networks.stylegan3.input_transform computes it, row-major.
function inputTransform(tx, ty, rot) {
  const a = rot * Math.PI / 180, c = Math.cos(a), s = Math.sin(a);
  return new Float32Array([c, -s, -(c * tx - s * ty), s, c, -(s * tx + c * ty), 0, 0, 1]);
}

// One batch through the network: seeds → Float32Array images [n, C, H, W] in [-1, 1].
async function generate(seeds, opts) {
  const m = state.meta, n = seeds.length;
  const z = new Float32Array(n * m.z_dim), noise = new Float32Array(n * m.noise_size);
  seeds.forEach((seed, i) => {
    const v = normals(seed, m.z_dim + m.noise_size);
    z.set(v.subarray(0, m.z_dim), i * m.z_dim);
    if (opts.noise === "random") noise.set(v.subarray(m.z_dim), i * m.noise_size);
    else if (opts.noise === "const") noise.set(state.constNoise, i * m.noise_size);
  });
  const feeds = {
    z: new ort.Tensor("float32", z, [n, m.z_dim]),
    psi: new ort.Tensor("float32", new Float32Array([opts.psi]), []),
  };
  if (m.noise_size) feeds.noise = new ort.Tensor("float32", noise, [n, m.noise_size]);  // none: StyleGAN3
  if (m.movable) feeds.transform = new ort.Tensor("float32", inputTransform(opts.tx, opts.ty, opts.rot), [3, 3]);
  if (m.c_dim) {
    const c = new Float32Array(n * m.c_dim);
    for (let i = 0; i < n; i++) c[i * m.c_dim + (opts.cls || 0)] = 1;
    feeds.c = new ort.Tensor("float32", c, [n, m.c_dim]);
  }
  const out = await state.session.run(feeds);
  return out.img.data;
}

// Serialise runs: onnxruntime-web runs one session call at a time.
function queued(fn) {
  const next = state.busy.then(fn, fn);
  state.busy = next.catch(() => {});
  return next;
}

function draw(canvas, data, index) {
  const m = state.meta, hw = m.height * m.width, base = index * m.channels * hw;
  canvas.width = m.width; canvas.height = m.height;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(m.width, m.height);
  for (let p = 0; p < hw; p++) {
    for (let k = 0; k < 3; k++) {
      const ch = m.channels === 1 ? 0 : k;
      const v = data[base + ch * hw + p];
      img.data[4 * p + k] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function hashOf(seed, opts) {
  const q = new URLSearchParams({ seed: String(seed), psi: String(opts.psi), noise: opts.noise });
  if (opts.cls !== null) q.set("class", String(opts.cls));
  for (const k of ["tx", "ty", "rot"]) if (state.meta.movable && opts[k]) q.set(k, String(opts[k]));
  return "#" + q.toString();
}

async function show(seed) {
  seed = Math.max(0, Math.min(SEED_MAX, Math.floor(Number(seed)) || 0));
  $("seed").value = String(seed);
  const opts = settings();
  const t0 = performance.now();
  const data = await queued(() => generate([seed], opts));
  const ms = performance.now() - t0;
  draw($("main"), data, 0);
  $("caption").textContent = `seed ${seed}, ψ ${opts.psi}` +
    (opts.cls !== null ? `, ${state.meta.class_names[opts.cls]}` : "");
  $("timing").textContent = `generated in ${ms.toFixed(0)} ms`;
  $("download").href = $("main").toDataURL("image/png");
  $("download").download = `seed${seed}.png`;
  $("permalink").href = hashOf(seed, opts);
  history.replaceState(null, "", hashOf(seed, opts));
  const seeds = Array.from({ length: MORE }, (_, i) => (seed + 1 + i) % (SEED_MAX + 1));
  const more = await queued(() => generate(seeds, opts));
  const tiles = $("more").children;
  seeds.forEach((s, i) => { draw(tiles[i], more, i); tiles[i].dataset.seed = String(s); tiles[i].title = `seed ${s}`; });
  document.body.dataset.ready = "1";
  document.body.dataset.seed = String(seed);
  return data;
}

// The ψ slider spans 0–1, as the authors' tools; its box widens it to −2…2.
function setBeyond(on) {
  $("psi-beyond").checked = on;
  $("psi").min = on ? "-2" : "0";
  $("psi").max = on ? "2" : "1";
  $("psi-out").value = $("psi").value;
}

function fromHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  if (q.has("psi")) {
    const psi = Number(q.get("psi"));
    setBeyond(psi < 0 || psi > 1);
    $("psi").value = q.get("psi");
    $("psi-out").value = $("psi").value;
  }
  const noise = q.get("noise");
  const radio = document.querySelector(`input[name=noise][value="${noise}"]`);
  if (radio) radio.checked = true;
  if (q.has("class") && state.meta.c_dim) $("class").value = q.get("class");
  for (const k of ["tx", "ty", "rot"]) if (q.has(k) && state.meta.movable) $(k).value = q.get(k);
  return q.has("seed") ? Number(q.get("seed")) : Math.floor(Math.random() * 100000);
}

async function main() {
  const t0 = performance.now();
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const [meta, constNoise, model] = await Promise.all([
    fetch("model.json").then((r) => r.json()),
    fetch("const-noise.bin").then((r) => r.arrayBuffer()),
    fetch("model.onnx").then((r) => r.arrayBuffer()),
  ]);
  state.meta = meta;
  state.constNoise = new Float32Array(constNoise);
  state.session = await ort.InferenceSession.create(new Uint8Array(model), { executionProviders: ["wasm"] });
  document.title = meta.title;
  $("title").textContent = meta.title;
  if (meta.card) { $("card").textContent = meta.card; $("card-section").hidden = false; }
  $("noise-row").hidden = !meta.noise_size;
  $("move-row").hidden = !meta.movable;
  if (meta.c_dim) {
    meta.class_names.forEach((name, i) => $("class").add(new Option(name, String(i))));
    $("class-row").hidden = false;
  }
  $("psi").value = String(meta.psi);
  $("psi-out").value = String(meta.psi);
  for (let i = 0; i < MORE; i++) {
    const c = document.createElement("canvas");
    c.addEventListener("click", () => show(Number(c.dataset.seed)));
    $("more").appendChild(c);
  }
  const newImage = () => show(Math.floor(Math.random() * (SEED_MAX + 1)));
  $("new").addEventListener("click", newImage);
  $("new").disabled = false;
  $("seed").addEventListener("change", () => show($("seed").value));
  $("psi").addEventListener("input", () => { $("psi-out").value = $("psi").value; });
  $("psi").addEventListener("change", () => show($("seed").value));
  $("psi-beyond").addEventListener("change", () => { setBeyond($("psi-beyond").checked); show($("seed").value); });
  $("class").addEventListener("change", () => show($("seed").value));
  for (const k of ["tx", "ty", "rot"]) $(k).addEventListener("change", () => show($("seed").value));
  document.querySelectorAll("input[name=noise]").forEach((r) => r.addEventListener("change", () => show($("seed").value)));
  document.addEventListener("keydown", (e) => {
    if ((e.key === "n" || e.key === "N") && !(e.target instanceof HTMLInputElement)) newImage();
  });
  await show(fromHash());
  document.body.dataset.loadMs = String(Math.round(performance.now() - t0));
}

// For tests and measurements: the page's own generator, and its latents.
window.stylegan = { generate: (seeds, opts) => queued(() => generate(seeds, opts)), normals, show };

main().catch((e) => {
  $("caption").textContent = `could not start: ${e && e.message ? e.message : e}`;
  document.body.dataset.error = String(e && e.message ? e.message : e);
});
