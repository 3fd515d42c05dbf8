// The datasets panel of the training view: upload a dataset archive to the server, list the uploaded ones, use one
// for training (fills the dataset path) or delete it. Server strings only ever go in as text, never as markup.
"use strict";

function datasetButton(text, label, className, action) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", action);
  return button;
}

async function loadDatasets() {
  const body = document.querySelector("#datasets tbody");
  const status = document.querySelector("#datasets-status");
  try {
    const response = await fetch(api("/v2/datasets/"), { headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    const { datasets, usage } = await response.json();
    document.querySelector("#datasets-usage").textContent =
      `Using ${usage.datasets} of ${usage.max_datasets} datasets and ` +
      `${(usage.bytes / 1e6).toFixed(1)} of ${(usage.max_bytes / 1e6).toFixed(1)} MB.`;
    body.replaceChildren();
    for (const dataset of datasets) {
      const row = body.insertRow();
      row.insertCell().textContent = dataset.name;
      row.insertCell().textContent = dataset.layout;
      row.insertCell().textContent = `${dataset.classes.length}: ${dataset.classes.join(", ")}`;
      row.insertCell().textContent = String(dataset.files);
      row.insertCell().textContent = `${(dataset.bytes / 1e6).toFixed(1)} MB`;
      const actions = row.insertCell();
      actions.append(
        datasetButton("Use", `Train on ${dataset.name}`, "button secondary", () => {
          document.querySelector("#dataset").value = dataset.path;
          setStatus(status, `Training will use “${dataset.name}”.`);
        }),
        " ",
        datasetButton("Delete", `Delete ${dataset.name}`, "button danger", () => deleteDataset(dataset.name)),
      );
    }
    if (!datasets.length) setStatus(status, "No uploaded datasets yet.");
  } catch (error) {
    setStatus(status, `Cannot list the datasets: ${error.message}`, true);
  }
}

async function uploadDataset(event) {
  event.preventDefault();
  const form = event.target;
  const status = document.querySelector("#datasets-status");
  const data = new FormData();
  data.append("file", document.querySelector("#dataset-file").files[0]);
  const name = document.querySelector("#dataset-name").value.trim();
  if (name) data.append("name", name);
  setStatus(status, "Uploading and checking…");
  try {
    const response = await fetch(api("/v2/datasets/"), { method: "POST", headers: authHeaders(), body: data });
    if (!response.ok) throw new Error(await errorText(response));
    const dataset = await response.json();
    document.querySelector("#dataset").value = dataset.path;
    form.reset();
    await loadDatasets();
    setStatus(status, `Uploaded “${dataset.name}”: ${dataset.files} files, ${dataset.classes.length} classes.`);
  } catch (error) {
    setStatus(status, `Not uploaded: ${error.message}`, true);
  }
}

async function deleteDataset(name) {
  const status = document.querySelector("#datasets-status");
  try {
    const response = await fetch(api(`/v2/datasets/${encodeURIComponent(name)}`), { method: "DELETE", headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    await loadDatasets();
    setStatus(status, `Deleted “${name}”.`);
  } catch (error) {
    setStatus(status, `Not deleted: ${error.message}`, true);
  }
}
