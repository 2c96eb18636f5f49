// The service's web page: plain JavaScript, no build step. Talks to the same JSON API as any client.
"use strict";

const API = "/api/v1";
const state = { file: null, image: null, faces: [] };
const $ = (selector) => document.querySelector(selector);

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function headers() {
  const key = $("#api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function call(path, options = {}) {
  const response = await fetch(API + path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || body.error || `HTTP ${response.status}`);
  }
  return body;
}

// Same colour for the same name on every photo (a hue from the name's characters).
function colourFor(name) {
  if (!name || name === "unknown") return "#9aa0a6";
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 75%, 45%)`;
}

function draw() {
  const canvas = $("#canvas");
  const image = state.image;
  if (!image) return;
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const pen = canvas.getContext("2d");
  pen.drawImage(image, 0, 0);
  const line = Math.max(2, Math.round(canvas.width / 400));
  for (const face of state.faces) {
    const [x1, y1, x2, y2] = face.box;
    const colour = colourFor(face.name);
    pen.lineWidth = line;
    pen.strokeStyle = colour;
    pen.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = face.similarity == null ? face.name : `${face.name} ${face.similarity.toFixed(2)}`;
    const size = Math.max(12, Math.round((x2 - x1) / 7));
    pen.font = `${size}px system-ui, sans-serif`;
    const width = pen.measureText(label).width + 8;
    const top = y1 - size - 6 >= 0 ? y1 - size - 6 : y2;
    pen.fillStyle = colour;
    pen.fillRect(x1, top, width, size + 6);
    pen.fillStyle = "white";
    pen.fillText(label, x1 + 4, top + size);
  }
}

function showFaces() {
  const list = $("#faces");
  list.replaceChildren();
  state.faces.forEach((face, index) => {
    const item = $("#face-template").content.firstElementChild.cloneNode(true);
    item.dataset.index = index;
    item.querySelector(".swatch").style.background = colourFor(face.name);
    item.querySelector(".face-name").textContent = face.name;
    item.querySelector(".face-similarity").textContent =
      face.similarity == null ? "" : `(${face.similarity.toFixed(2)})`;
    item.querySelector("form.enrol").addEventListener("submit", (event) => {
      event.preventDefault();
      enrol(face, item.querySelector(".enrol-name").value.trim());
    });
    list.appendChild(item);
  });
}

async function recognise() {
  if (!state.file) return;
  setStatus("recognising…");
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  try {
    const result = await call("/recognize", { method: "POST", body: form });
    state.faces = result.faces;
    draw();
    showFaces();
    const known = result.faces.filter((face) => face.name !== "unknown").length;
    setStatus(`${result.faces.length} faces, ${known} recognised`);
  } catch (error) {
    state.faces = [];
    showFaces();
    setStatus(error.message, true);
  }
}

async function enrol(face, name) {
  if (!name) return;
  setStatus(`enrolling ${name}…`);
  const form = new FormData();
  form.append("images", state.file, state.file.name);
  form.append("box", face.box.join(","));
  try {
    await call(`/subjects/${encodeURIComponent(name)}/faces`, { method: "POST", body: form });
    await loadSubjects();
    await recognise();
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function loadSubjects() {
  try {
    const result = await call("/subjects");
    const list = $("#subjects");
    list.replaceChildren();
    for (const subject of result.subjects) {
      const item = $("#subject-template").content.firstElementChild.cloneNode(true);
      item.dataset.name = subject.name;
      item.querySelector(".subject-name").textContent = subject.name;
      item.querySelector(".subject-count").textContent = `${subject.faces} face${subject.faces === 1 ? "" : "s"}`;
      item.querySelector(".delete-subject").addEventListener("click", () => removeSubject(subject.name));
      list.appendChild(item);
    }
    $("#gallery-size").textContent = `(${result.subjects.length} people, ${result.total_faces} faces)`;
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function removeSubject(name) {
  if (!window.confirm(`Delete ${name} and all their faces?`)) return;
  try {
    await call(`/subjects/${encodeURIComponent(name)}`, { method: "DELETE" });
    setStatus(`deleted ${name}`);
    await loadSubjects();
    await recognise();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function usePhoto(file) {
  if (!file) return;
  state.file = file;
  const image = new Image();
  image.onload = () => {
    URL.revokeObjectURL(image.src);
    state.image = image;
    recognise();
  };
  image.onerror = () => setStatus(`${file.name}: the browser cannot show this image`, true);
  image.src = URL.createObjectURL(file);
}

function setUp() {
  const zone = $("#drop-zone");
  $("#photo").addEventListener("change", (event) => usePhoto(event.target.files[0]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    usePhoto(event.dataTransfer.files[0]);
  });
  const key = $("#api-key");
  key.value = sessionStorage.getItem("arcface-api-key") || "";
  key.addEventListener("change", () => sessionStorage.setItem("arcface-api-key", key.value));
  loadSubjects();
}

setUp();
