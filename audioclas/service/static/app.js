// The audioclas web page: tag a file or a recording (results.js shows the results), and launch and follow training
// jobs. Plain JavaScript. The spectrogram is computed here, in the browser (Web Audio decodes the file; a small FFT
// below), so the server only answers the predict request; a format the browser cannot decode still gets its labels.
"use strict";

const $ = (selector) => document.querySelector(selector);
const api = (path) => new URL(path, window.location.origin).toString();

// ------------------------------------------------------------------------------------------------ views

function showView() {
  const view = window.location.hash === "#train" ? "train" : "tag";
  $("#view-tag").hidden = view !== "tag";
  $("#view-train").hidden = view !== "train";
  for (const name of ["tag", "train"]) {
    const link = $(`#nav-${name}`);
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "train") { loadHistory(); loadDatasets(); }
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

// ------------------------------------------------------------------------------------------------ models

async function loadModels() {
  const select = $("#model");
  try {
    const response = await fetch(api("/v2/models/"));
    if (!response.ok) throw new Error(await errorText(response));
    const { models } = await response.json();
    select.replaceChildren();
    for (const model of models) {
      const option = document.createElement("option");
      option.value = model.name;
      option.disabled = Boolean(model.problem);
      const headline = modelHeadline(model);
      option.textContent = model.kind === "audioset"
        ? `AudioSet (${model.classes.length} classes)`
        : `${model.name} (${model.classes.length} classes${headline ? ", " + headline : ""})`;
      select.append(option);
    }
  } catch (error) {
    setStatus($("#tag-status"), `Cannot list the models: ${error.message}`, true);
  }
}

function modelHeadline(model) {
  for (const split of ["test", "val"]) {
    const values = (model.metrics || {})[split];
    if (values && typeof values.accuracy === "number") return `${split} accuracy ${(values.accuracy * 100).toFixed(1)} %`;
    if (values && typeof values.mAP === "number") return `${split} mAP ${values.mAP.toFixed(3)}`;
  }
  return "";
}

// ------------------------------------------------------------------------------------------------ spectrogram

const SPECTRO_ROWS = 128;
const FFT_SIZE = 1024;
const MIN_HZ = 20, MAX_HZ = 15000; // the band the network's own mel front end covers
// "magma"-like colour map: black → purple → orange → pale yellow.
const COLOUR_STOPS = [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]];

async function drawSpectrogram(file, duration, canvas, note) {
  const context2d = canvas.getContext("2d");
  context2d.fillStyle = "#000";
  context2d.fillRect(0, 0, canvas.width, canvas.height);
  note.textContent = "Computing the spectrogram…";
  let audio;
  try {
    const bytes = await file.arrayBuffer();
    const decoder = new OfflineAudioContext(1, 1, 44100);
    audio = await decoder.decodeAudioData(bytes);
  } catch {
    note.textContent = "This browser cannot decode the file for a spectrogram; the labels come from the server.";
    return;
  }
  const samples = mono(audio);
  const rate = audio.sampleRate;
  const columns = canvas.width;
  const image = context2d.createImageData(columns, SPECTRO_ROWS);
  const topHz = Math.min(MAX_HZ, rate / 2);
  const bins = melRows(rate, FFT_SIZE, SPECTRO_ROWS, MIN_HZ, topHz);
  const taper = hann(FFT_SIZE);
  const real = new Float32Array(FFT_SIZE);
  const imag = new Float32Array(FFT_SIZE);
  const power = new Float32Array(FFT_SIZE / 2 + 1);
  const levels = new Float32Array(columns * SPECTRO_ROWS);
  let top = -Infinity;
  for (let column = 0; column < columns; column++) {
    const start = Math.round((column / columns) * Math.max(0, samples.length - FFT_SIZE));
    for (let i = 0; i < FFT_SIZE; i++) { real[i] = (samples[start + i] || 0) * taper[i]; imag[i] = 0; }
    fft(real, imag);
    for (let k = 0; k < power.length; k++) power[k] = real[k] * real[k] + imag[k] * imag[k];
    for (let row = 0; row < SPECTRO_ROWS; row++) {
      const [low, high] = bins[row];
      let sum = 0;
      for (let k = low; k <= high; k++) sum += power[k];
      const level = 10 * Math.log10(sum / (high - low + 1) + 1e-12);
      levels[column * SPECTRO_ROWS + row] = level;
      if (level > top) top = level;
    }
    if (column % 64 === 63) await new Promise((resolve) => setTimeout(resolve)); // keep the page responsive
  }
  const floor = top - 80; // 80 dB of dynamic range
  for (let column = 0; column < columns; column++) {
    for (let row = 0; row < SPECTRO_ROWS; row++) {
      const value = (levels[column * SPECTRO_ROWS + row] - floor) / (top - floor);
      const [r, g, b] = colour(Math.max(0, Math.min(1, value)));
      const offset = ((SPECTRO_ROWS - 1 - row) * columns + column) * 4;
      image.data[offset] = r; image.data[offset + 1] = g; image.data[offset + 2] = b; image.data[offset + 3] = 255;
    }
  }
  const bitmap = await createImageBitmap(image);
  context2d.imageSmoothingEnabled = true;
  context2d.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  note.textContent = `Mel-scaled, ${MIN_HZ} Hz–${(topHz / 1000).toFixed(1)} kHz, ${formatTime(duration)} long; 80 dB range.`;
  canvas.setAttribute("aria-label", `Spectrogram of ${file.name}, ${MIN_HZ} Hz to ${(topHz / 1000).toFixed(1)} kHz`);
}

function mono(audio) {
  const out = new Float32Array(audio.length);
  for (let channel = 0; channel < audio.numberOfChannels; channel++) {
    const data = audio.getChannelData(channel);
    for (let i = 0; i < data.length; i++) out[i] += data[i] / audio.numberOfChannels;
  }
  return out;
}

function hann(size) {
  return Float32Array.from({ length: size }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size));
}

function melRows(rate, size, rows, lowHz, highHz) {
  // FFT bin ranges of `rows` bands evenly spaced on the mel scale from lowHz to highHz.
  const mel = (hz) => 2595 * Math.log10(1 + hz / 700);
  const hz = (m) => 700 * (10 ** (m / 2595) - 1);
  const bottom = mel(lowHz), top = mel(highHz);
  const binHz = rate / size;
  const ranges = [];
  for (let row = 0; row < rows; row++) {
    const low = Math.max(1, Math.round(hz(bottom + (row / rows) * (top - bottom)) / binHz));
    const high = Math.max(low, Math.round(hz(bottom + ((row + 1) / rows) * (top - bottom)) / binHz) - 1);
    ranges.push([Math.min(low, size / 2), Math.min(high, size / 2)]);
  }
  return ranges;
}

function fft(real, imag) {
  // In-place iterative radix-2 FFT (the size is a power of two).
  const n = real.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [real[i], real[j]] = [real[j], real[i]]; [imag[i], imag[j]] = [imag[j], imag[i]]; }
  }
  for (let length = 2; length <= n; length <<= 1) {
    const angle = (-2 * Math.PI) / length;
    const stepReal = Math.cos(angle), stepImag = Math.sin(angle);
    for (let start = 0; start < n; start += length) {
      let wReal = 1, wImag = 0;
      for (let k = 0; k < length / 2; k++) {
        const a = start + k, b = a + length / 2;
        const tReal = real[b] * wReal - imag[b] * wImag;
        const tImag = real[b] * wImag + imag[b] * wReal;
        real[b] = real[a] - tReal; imag[b] = imag[a] - tImag;
        real[a] += tReal; imag[a] += tImag;
        [wReal, wImag] = [wReal * stepReal - wImag * stepImag, wReal * stepImag + wImag * stepReal];
      }
    }
  }
}

function colour(value) {
  const position = value * (COLOUR_STOPS.length - 1);
  const index = Math.min(COLOUR_STOPS.length - 2, Math.floor(position));
  const t = position - index;
  return COLOUR_STOPS[index].map((channel, i) => Math.round(channel + t * (COLOUR_STOPS[index + 1][i] - channel)));
}

// ------------------------------------------------------------------------------------------------ input

function setUpInput() {
  const drop = $("#drop");
  $("#file").addEventListener("change", (event) => {
    if (event.target.files.length) tag(event.target.files[0]);
    event.target.value = "";
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) tag(event.dataTransfer.files[0]);
  });
  setUpRecorder();
}

function setUpRecorder() {
  const button = $("#record");
  const clock = $("#record-time");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    button.disabled = true;
    button.title = "Recording needs a browser with MediaRecorder, on https or localhost";
    return;
  }
  let recorder = null, timer = null;
  button.addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      setStatus($("#tag-status"), `No microphone: ${error.message}`, true);
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(timer);
      clock.textContent = "";
      button.textContent = "● Record";
      button.setAttribute("aria-pressed", "false");
      const type = recorder.mimeType || "audio/webm";
      const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
      recorder = null;
      tag(new File(chunks, `recording.${extension}`, { type }));
    });
    recorder.start();
    const started = Date.now();
    timer = setInterval(() => { clock.textContent = formatTime((Date.now() - started) / 1000); }, 200);
    button.textContent = "■ Stop";
    button.setAttribute("aria-pressed", "true");
  });
}

// ------------------------------------------------------------------------------------------------ training

let followed = null; // id of the job shown, and its polling timer
let pollTimer = null;

function authHeaders() {
  const token = $("#token").value.trim();
  if (token) sessionStorage.setItem("audioclas-token", token);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function startTraining(event) {
  event.preventDefault();
  const status = $("#train-status");
  const form = event.target;
  const body = { dataset: form.dataset.value.trim() };
  if (form.name.value.trim()) body.name = form.name.value.trim();
  body.head = form.head.value;
  for (const field of ["epochs", "batch_size", "early_stopping"]) body[field] = Number(form[field].value);
  for (const field of ["lr", "val_fraction"]) body[field] = Number(form[field].value);
  setStatus(status, "Submitting…");
  try {
    const response = await fetch(api("/v2/models/audioset/train/"), {
      method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() }, body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorText(response));
    const job = await response.json();
    setStatus(status, `Job ${job.id} queued: training “${job.target}”.`);
    follow(job.model, job.id);
    loadHistory();
  } catch (error) {
    setStatus(status, `Not started: ${error.message}`, true);
  }
}

function follow(model, jobId) {
  followed = { model, id: jobId };
  clearTimeout(pollTimer);
  poll();
}

async function poll() {
  if (!followed) return;
  const { model, id } = followed;
  try {
    const response = await fetch(api(`/v2/models/${encodeURIComponent(model)}/train/${id}`), { headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    const job = await response.json();
    showJob(job);
    if (job.status === "queued" || job.status === "running") pollTimer = setTimeout(poll, 1000);
    else { loadHistory(); loadModels(); }
  } catch (error) {
    setStatus($("#train-status"), `Lost the job: ${error.message}`, true);
  }
}

function showJob(job) {
  $("#job").hidden = false;
  $("#job-id").textContent = job.id.slice(0, 8);
  $("#job-target").textContent = job.target;
  const badge = $("#job-status");
  badge.textContent = job.status + (job.cancel_requested && job.status === "running" ? " (cancelling)" : "");
  badge.className = `badge ${job.status}`;
  const progress = job.progress;
  const stageNames = { extract: "Computing embeddings (files)", train: "Training the head (epochs)", finetune: "Fine-tuning (batches)" };
  $("#job-stage").textContent = progress
    ? `${stageNames[progress.stage] || progress.stage}: ${progress.done} / ${progress.total}`
    : job.status === "queued" ? "Waiting in the queue" : "Starting";
  $("#job-progress").value = progress && progress.total ? progress.done / progress.total : 0;
  showMetrics(job);
  drawChart(job.history || []);
  const log = $("#job-log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = (job.log || []).join("\n") + (job.error ? `\n\nerror: ${job.error}` : "");
  if (atBottom) log.scrollTop = log.scrollHeight;
  $("#cancel").disabled = !(job.status === "queued" || job.status === "running");
}

function showMetrics(job) {
  const body = $("#job-metrics tbody");
  body.replaceChildren();
  const rows = [];
  const metrics = job.metrics || {};
  for (const [key, value] of Object.entries(metrics)) {
    if (typeof value === "number") rows.push([key, value]);
    else if (value && typeof value === "object") {
      for (const [name, inner] of Object.entries(value)) if (typeof inner === "number") rows.push([`${key} ${name}`, inner]);
    }
  }
  if (job.result) {
    rows.push(["stopped", job.result.stopped], ["best epoch", job.result.best_epoch], ["model saved", job.result.model]);
  }
  for (const [name, value] of rows) {
    const row = body.insertRow();
    row.insertCell().textContent = name.replaceAll("_", " ");
    const cell = row.insertCell();
    cell.className = "num";
    cell.textContent = typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value);
  }
}

function drawChart(history) {
  const canvas = $("#job-chart");
  const context2d = canvas.getContext("2d");
  const { width, height } = canvas;
  context2d.clearRect(0, 0, width, height);
  if (!history.length) return;
  const pad = 28;
  const x = (epoch) => pad + ((epoch - 1) / Math.max(1, history.length - 1)) * (width - 2 * pad);
  const maxLoss = Math.max(...history.map((row) => row.train_loss || 0), 1e-9);
  context2d.strokeStyle = "#d5dae3";
  context2d.strokeRect(pad, pad / 2, width - 2 * pad, height - 1.5 * pad);
  const line = (values, scale, colour) => {
    context2d.beginPath();
    context2d.strokeStyle = colour;
    context2d.lineWidth = 2;
    values.forEach((value, i) => {
      const y = height - pad - (value / scale) * (height - 1.5 * pad);
      i ? context2d.lineTo(x(i + 1), y) : context2d.moveTo(x(i + 1), y);
    });
    context2d.stroke();
  };
  line(history.map((row) => row.train_loss || 0), maxLoss, "#c0392b");
  if (history.some((row) => typeof row.val_score === "number")) line(history.map((row) => row.val_score || 0), 1, "#1f5fbf");
  context2d.fillStyle = "#586174";
  context2d.font = "12px system-ui, sans-serif";
  context2d.fillText(`epoch ${history.length}`, width - pad - 60, height - 6);
  context2d.fillText("1", pad, height - 6);
}

async function cancelJob() {
  if (!followed) return;
  const { model, id } = followed;
  try {
    const response = await fetch(api(`/v2/models/${encodeURIComponent(model)}/train/${id}`), { method: "DELETE", headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    showJob(await response.json());
    follow(model, id);
  } catch (error) {
    setStatus($("#train-status"), `Cannot cancel: ${error.message}`, true);
  }
}

async function loadHistory() {
  const body = $("#history tbody");
  try {
    const response = await fetch(api("/v2/models/audioset/train/?limit=50"), { headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    const { jobs } = await response.json();
    body.replaceChildren();
    for (const job of jobs) {
      const row = body.insertRow();
      row.insertCell().textContent = new Date(job.created).toLocaleString();
      row.insertCell().textContent = job.target;
      const badge = make("span", "badge", job.status); // no server string ever goes in as markup
      badge.classList.add(job.status);
      row.insertCell().append(badge);
      row.insertCell().textContent = job.error ? job.error.split("\n")[0] : jobSummary(job);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button secondary";
      button.textContent = "Show";
      button.setAttribute("aria-label", `Show job for ${job.target}`);
      button.addEventListener("click", () => follow(job.model, job.id));
      row.insertCell().append(button);
    }
  } catch (error) {
    setStatus($("#train-status"), `Cannot read the history: ${error.message}`, true);
  }
}

function jobSummary(job) {
  const metrics = job.metrics || {};
  for (const split of ["test", "val"]) {
    if (metrics[split] && typeof metrics[split].accuracy === "number") return `${split} accuracy ${(metrics[split].accuracy * 100).toFixed(1)} %`;
    if (metrics[split] && typeof metrics[split].mAP === "number") return `${split} mAP ${metrics[split].mAP.toFixed(3)}`;
  }
  return job.result ? `${job.result.stopped}, ${job.history.length} epochs` : "";
}

// ------------------------------------------------------------------------------------------------ start

window.addEventListener("hashchange", showView);
document.addEventListener("DOMContentLoaded", () => {
  $("#token").value = sessionStorage.getItem("audioclas-token") || "";
  $("#train-form").addEventListener("submit", startTraining);
  $("#token").addEventListener("change", loadHistory); // the history needs the token when the server has one
  $("#token").addEventListener("change", loadDatasets);
  $("#dataset-form").addEventListener("submit", uploadDataset);
  $("#cancel").addEventListener("click", cancelJob);
  setUpInput();
  setUpTagging();
  loadModels();
  showView();
});
