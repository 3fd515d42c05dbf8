// The tagging view of the audioclas web page: send a file (or an archive) to the predict route and show one result
// block per input: the top labels, the events, and a timeline on the same time axis as the spectrogram and the
// player. Every string from the server or from a file name goes in through textContent, never as markup.
"use strict";

const TICKS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
const FILE_NAMES = { csv: "predictions.csv", raven: "events.selections.txt", audacity: "events.labels.txt" };
const MAX_PLAYABLE_MEMBERS = 20; // an archive's first members get a player and a spectrogram, the rest a note
let lastFile = null; // the file (or recording) last tagged: "Tag again" and the downloads send it again
let tagging = 0; // counts the tag requests: only the latest one shows its results

function make(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function formatTime(seconds) {
  const minutes = Math.floor(seconds / 60);
  const rest = seconds - minutes * 60;
  return `${minutes}:${rest.toFixed(1).padStart(4, "0")}`;
}

// The request's form: the page's options, and `format` (json with the timeline, or a table to download).
function predictForm(file, format) {
  const form = new FormData();
  form.append("files", file, file.name);
  form.append("top_k", String(Math.min(20, Math.max(1, Number($("#top-k").value) || 8))));
  const hop = $("#hop").value.trim();
  if (hop) form.append("hop", hop);
  const threshold = $("#threshold").value.trim();
  if (threshold) form.append("threshold", threshold);
  if ($("#events").checked) form.append("events", "true");
  if (format === "json") form.append("timeline", "true");
  else form.append("format", format);
  return form;
}

function predictURL() {
  return api(`/v2/models/${encodeURIComponent($("#model").value)}/predict/`);
}

async function tag(file) {
  const status = $("#tag-status");
  lastFile = file;
  const request = ++tagging;
  $("#rerun").disabled = false;
  setStatus(status, `Tagging ${file.name}…`);
  const started = performance.now();
  let body;
  try {
    const response = await fetch(predictURL(), { method: "POST", body: predictForm(file, "json") });
    if (!response.ok) throw new Error(await errorText(response));
    body = await response.json();
  } catch (error) {
    if (request === tagging) setStatus(status, `Could not tag ${file.name}: ${error.message}`, true);
    return;
  }
  if (request !== tagging) return; // another file was sent meanwhile
  const results = body.results.filter((result) => !result.error);
  const failures = body.results.filter((result) => result.error);
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  if (!(await showResults(results, file, request))) return;
  setStatus(status, `${file.name}: ${results.length} input${results.length === 1 ? "" : "s"} tagged in ${seconds} s` +
    (failures.length ? ` (${failures.length} failed: ${failures[0].input}: ${failures[0].error})` : ""));
}

// Shows the results, unless another request started meanwhile (then returns false).
async function showResults(results, file, request) {
  const container = $("#results");
  for (const player of container.querySelectorAll("audio[data-url]")) URL.revokeObjectURL(player.dataset.url);
  container.replaceChildren();
  // A member's input is "archive!member" (the browser may have escaped a quote in the name sent, never a "!")
  const marks = (text) => text.split("!").length;
  const archive = results.length > 1 || results.some((result) => marks(result.input) > marks(file.name));
  const members = archive ? await archiveMembers(file).catch(() => new Map()) : new Map();
  let playable = 0;
  for (const result of results) {
    let audio = archive ? null : file;
    const member = [...members.keys()].filter((name) => result.input.endsWith(`!${name}`))
      .reduce((longest, name) => (longest && longest.length >= name.length ? longest : name), null);
    if (member !== null && playable < MAX_PLAYABLE_MEMBERS) {
      const bytes = await members.get(member)().catch(() => null);
      if (bytes) audio = new File([bytes], member.split("/").pop());
      playable += Boolean(bytes);
    }
    if (request !== tagging) return false; // (checked after every wait)
    container.append(resultBlock(result, audio));
  }
  $("#downloads").hidden = !results.length;
  const audacity = $("#downloads [data-format=audacity]");
  audacity.disabled = results.length > 1;
  audacity.title = results.length > 1 ? "An Audacity label track holds one input: download Raven or CSV" : "";
  return true;
}

// One input's block; `file` is its audio when the page has it (an archive's member it could read: archives.js).
function resultBlock(result, file) {
  const block = $("#result-template").content.firstElementChild.cloneNode(true);
  block.querySelector(".title").textContent = `${result.input} — ${formatTime(result.duration)}`;
  block.setAttribute("aria-label", `Result for ${result.input}`);
  const player = block.querySelector(".player");
  if (file) {
    player.dataset.url = URL.createObjectURL(file);
    player.src = player.dataset.url;
    followPlayback(block, player, result.duration);
  } else {
    player.remove();
    const note = block.querySelector(".player-note");
    note.hidden = false;
    note.textContent = "This archive member cannot be played here (only the first members of a zip or tar are): " +
      "upload the file itself to hear it.";
  }
  const seek = file ? (seconds) => playFrom(player, seconds) : null;
  if (!seek) block.querySelector(".seek-note").remove();
  drawBars(block.querySelector(".bars"), result.labels);
  listEvents(block, result.events, seek);
  drawLanes(block, result, seek);
  windowTable(block, result.windows || [], seek);
  if (file) drawSpectrogram(file, result.duration, block.querySelector(".spectrogram"), block.querySelector(".spectro-note"));
  else {
    const spectrogram = block.querySelector(".lanes .lane-label"); // the first lane: no audio to draw it from
    spectrogram.nextElementSibling.remove();
    spectrogram.remove();
  }
  return block;
}

function playFrom(player, seconds) {
  player.currentTime = seconds;
  player.play().catch(() => {}); // a browser that refuses to play still moved to the time
}

function drawBars(list, labels) {
  for (const label of labels) {
    const item = make("li");
    const percent = (label.score * 100).toFixed(1);
    const name = make("span", "name", label.name);
    name.title = label.id ? `${label.name} (${label.id})` : label.name;
    const track = make("span", "track");
    track.setAttribute("aria-hidden", "true");
    const fill = make("span", "fill");
    fill.style.width = `${Math.max(0, Math.min(100, label.score * 100))}%`;
    track.append(fill);
    item.append(name, track, make("span", "score", `${percent}%`));
    item.setAttribute("aria-label", `${label.name}: ${percent} percent`);
    list.append(item);
  }
}

function eventText(event) {
  return `${event.label}, ${formatTime(event.start)}–${formatTime(event.end)}, score ${event.score.toFixed(2)}`;
}

function listEvents(block, events, seek) {
  const list = block.querySelector(".events");
  const note = block.querySelector(".events-note");
  if (!events) {
    note.textContent = "Turn on Events above to find when each label occurs.";
    return;
  }
  note.textContent = events.length ? "" : "No label reaches the threshold in any window.";
  for (const event of [...events].sort((a, b) => a.start - b.start || b.score - a.score)) {
    const item = make("li");
    if (seek) {
      const button = make("button", "event", eventText(event));
      button.type = "button";
      button.setAttribute("aria-label", `Play ${eventText(event)}`);
      button.addEventListener("click", () => seek(event.start));
      item.append(button);
    } else {
      item.textContent = eventText(event);
    }
    item.dataset.start = String(event.start);
    item.dataset.score = String(event.score);
    list.append(item);
  }
}

// The lanes under the spectrogram: one per label (the top labels, then any other label with events) holding its
// windows' scores and its events, then the time axis. Positions are fractions of the clip's duration, so everything
// lines up with the spectrogram and the cursor.
function drawLanes(block, result, seek) {
  const lanes = block.querySelector(".lanes");
  const cursor = lanes.querySelector(".cursor");
  const duration = Math.max(result.duration, 1e-3);
  const windows = result.windows || [];
  const events = result.events || [];
  const place = (element, start, end) => {
    const left = Math.max(0, Math.min(1, start / duration));
    element.style.left = `${100 * left}%`;
    element.style.width = `${100 * Math.max(0, Math.min(1, end / duration) - left)}%`;
  };
  const playable = (element, start, description) => {
    if (!seek) return;
    element.type = "button";
    element.tabIndex = -1; // the keyboard has the windows table's and the events list's buttons
    element.setAttribute("aria-label", `Play ${description}`);
    element.addEventListener("click", (click) => { click.stopPropagation(); seek(start); });
  };
  const names = result.labels.slice(0, 5).map((label) => label.name);
  for (const event of events) if (!names.includes(event.label)) names.push(event.label);
  for (const name of names) {
    const box = make("div", "lane");
    lanes.insertBefore(make("div", "lane-label", name), cursor);
    lanes.insertBefore(box, cursor);
    windows.forEach((span, i) => {
      const hit = span.labels.find((candidate) => candidate.name === name);
      const score = hit ? hit.score : 0;
      const cell = make(seek ? "button" : "div", "cell");
      place(cell, span.start, i + 1 < windows.length ? Math.min(span.end, windows[i + 1].start) : span.end);
      cell.style.background = `rgba(31, 95, 191, ${0.06 + 0.94 * score})`;
      cell.title = `${formatTime(span.start)}–${formatTime(span.end)}: ${name} ` +
        (hit ? `${(score * 100).toFixed(0)}%` : "(not in this window's top labels)");
      playable(cell, span.start, `from ${formatTime(span.start)}`);
      box.append(cell);
    });
    for (const event of events.filter((candidate) => candidate.label === name)) {
      const bar = make(seek ? "button" : "div", "event-bar");
      place(bar, event.start, event.end);
      bar.title = eventText(event);
      playable(bar, event.start, eventText(event));
      box.append(bar);
    }
  }
  const axis = make("div", "lane axis");
  lanes.insertBefore(make("div", "lane-label"), cursor);
  lanes.insertBefore(axis, cursor);
  const step = TICKS.find((tick) => duration / tick <= 10) || 3600;
  for (let time = 0; time < duration - step / 3; time += step) { // no tick too near the end: its text would overflow
    const tick = make("span", "tick", formatTime(time));
    tick.style.left = `${(100 * time) / duration}%`;
    axis.append(tick);
  }
  if (seek) {
    for (const box of lanes.querySelectorAll(".lane")) {
      box.addEventListener("click", (click) => {
        const bounds = box.getBoundingClientRect();
        seek(Math.max(0, Math.min(1, (click.clientX - bounds.left) / bounds.width)) * result.duration);
      });
    }
  }
}

function windowTable(block, windows, seek) {
  const body = block.querySelector(".window-table tbody");
  for (const span of windows) {
    const row = body.insertRow();
    const when = row.insertCell();
    const text = `${formatTime(span.start)}–${formatTime(span.end)}`;
    if (seek) {
      const button = make("button", "link", text);
      button.type = "button";
      button.setAttribute("aria-label", `Play from ${formatTime(span.start)}`);
      button.addEventListener("click", () => seek(span.start));
      when.append(button);
    } else {
      when.textContent = text;
    }
    row.insertCell().textContent = span.labels.slice(0, 3).map((l) => `${l.name} ${(l.score * 100).toFixed(0)}%`).join(", ");
  }
}

// The cursor across the spectrogram and the lanes follows the player.
function followPlayback(block, player, duration) {
  const cursor = block.querySelector(".cursor");
  const update = () => {
    const total = player.duration || duration;
    cursor.hidden = !total || (player.paused && player.currentTime === 0);
    if (total) cursor.style.setProperty("--t", String(Math.min(1, player.currentTime / total)));
    if (!player.paused) requestAnimationFrame(update);
  };
  for (const name of ["play", "pause", "seeked", "timeupdate"]) player.addEventListener(name, update);
}

// ------------------------------------------------------------------------------------------------ downloads

async function download(format) {
  const status = $("#tag-status");
  if (!lastFile) return;
  setStatus(status, `Writing the ${format} table…`);
  try {
    const response = await fetch(predictURL(), { method: "POST", body: predictForm(lastFile, format) });
    if (!response.ok) throw new Error(await errorText(response));
    const url = URL.createObjectURL(await response.blob());
    const link = Object.assign(document.createElement("a"), { href: url, download: FILE_NAMES[format] });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    setStatus(status, `Downloaded ${FILE_NAMES[format]} (${lastFile.name}).`);
  } catch (error) {
    setStatus(status, `Could not write the ${format} table: ${error.message}`, true);
  }
}

function setUpTagging() {
  $("#tag-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (lastFile) tag(lastFile);
  });
  for (const button of document.querySelectorAll("#downloads button")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }
}
