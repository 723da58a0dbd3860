// t2igan demo page: POST the form to /api/generate (or /api/style with an upload) and show the images as a grid.
"use strict";
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadInfo() {
  try {
    const info = await (await fetch("/api/info")).json();
    const lim = info.limits || {};
    if (lim.max_images) $("n").max = lim.max_images;
    if (lim.max_caption_chars) { $("caption").maxLength = lim.max_caption_chars; $("caption2").maxLength = lim.max_caption_chars; }
    if (lim.max_seed) $("seed").max = lim.max_seed;
    $("interp-box").hidden = !info.interpolation;
    $("style-box").hidden = !info.style_transfer;
    showExamples(info.examples || []);
  } catch (e) {
    showError("cannot reach the server: " + e);
  }
}

// Captions from the model's own training data: the placeholder, and buttons that fill the caption.
function showExamples(examples) {
  if (!examples.length) return;
  $("caption").placeholder = examples[0];
  if (examples.length > 1) $("caption2").placeholder = examples[1];
  for (const text of examples) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", () => { $("caption").value = text; $("caption").focus(); });
    $("examples").append(b);
  }
  $("examples").hidden = false;
}

// One grid cell: the image, its seed (what reproduces it: same caption + seed → same image) and a download link.
function figure(src, seed, caption) {
  const fig = document.createElement("figure");
  const img = new Image();
  img.src = src;
  img.alt = `${seed === null ? "style transfer" : "seed " + seed}: ${caption}`;
  const label = document.createElement("figcaption");
  const what = document.createElement("span");
  what.className = "seed";
  what.textContent = seed === null ? "from your image" : `seed ${seed}`;
  const link = document.createElement("a");
  link.href = src;
  link.download = seed === null ? "t2igan-style.png" : `t2igan-seed${seed}.png`;
  link.textContent = "download";
  label.append(what, link);
  fig.append(img, label);
  return fig;
}

async function generate(event) {
  event.preventDefault();
  showError("");
  const file = $("style-image").files[0];
  // The optional controls count only while their section is open.
  const useStyle = !$("style-box").hidden && $("style-box").open && file;
  let request;
  if (useStyle) {
    const body = new FormData();
    body.append("caption", $("caption").value);
    body.append("image", file);
    request = fetch("/api/style", { method: "POST", body });
  } else {
    const body = { caption: $("caption").value, n: Number($("n").value), seed: Number($("seed").value) };
    if (!$("interp-box").hidden && $("interp-box").open && $("caption2").value.trim()) {
      body.caption2 = $("caption2").value;
      body.mix = Number($("mix").value);
    }
    request = fetch("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  }
  $("generate").disabled = true;
  $("status").textContent = "generating…";
  const started = performance.now();
  try {
    const response = await request;
    let data;
    try { data = await response.json(); } catch (e) { data = { error: `server answered ${response.status}` }; }
    if (!response.ok || data.error) {
      showError(data.error || `server answered ${response.status}`);
      $("status").textContent = "";
      return;
    }
    const seeds = data.seeds || data.images.map(() => null);
    $("grid").replaceChildren(...data.images.map((src, i) => figure(src, seeds[i], $("caption").value)));
    $("status").textContent = `${data.images.length} images in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (e) {
    showError("request failed: " + e);
    $("status").textContent = "";
  } finally {
    $("generate").disabled = false;
  }
}

$("form").addEventListener("submit", generate);
$("mix").addEventListener("input", () => { $("mix-value").textContent = Number($("mix").value).toFixed(2); });
$("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); });
loadInfo();
