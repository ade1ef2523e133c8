// The drawing page: pointer strokes on a canvas, read by POST /api/predict as you draw.
"use strict";

const pad = document.getElementById("pad");
const context = pad.getContext("2d");
const seen = document.getElementById("seen");
const message = document.getElementById("message");
const labelShown = document.getElementById("label");
const bars = document.getElementById("bars");
const STROKE = 18; // pixels of the 280-pixel pad; the server brings any width to MNIST's anyway
const READ_EVERY_MS = 250; // while drawing, at most one reading per this many milliseconds

let drawing = false;
let inked = false;
let lastRead = 0;
let pending = null;
let readAgain = false; // the drawing changed while a reading was in flight: read once more when it answers
let sequence = 0; // answers to older requests than the newest shown are dropped
const result = document.querySelector(".result");

function resetPad() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, pad.width, pad.height);
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = STROKE;
  context.strokeStyle = "#000";
  inked = false;
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  const [x, y] = padPoint(event);
  context.beginPath();
  context.moveTo(x, y);
  context.lineTo(x + 0.01, y);
  context.stroke();
  inked = true;
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const [x, y] = padPoint(each);
    context.lineTo(x, y);
  }
  context.stroke();
  const now = performance.now();
  if (now - lastRead > READ_EVERY_MS) {
    lastRead = now;
    readPad();
  }
});

function endStroke(event) {
  if (!drawing) return;
  drawing = false;
  if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
  readPad();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  resetPad();
  sequence += 1;
  readAgain = false;
  showNothing("Draw a digit to start.");
});

function readPad() {
  if (!inked) {
    showNothing("The canvas is blank: draw a digit.");
    return;
  }
  if (pending) { // one request in flight at a time; the newest drawing is read when it answers
    readAgain = true;
    return;
  }
  result.dataset.state = "reading";
  pending = new Promise((resolve) => pad.toBlob(resolve, "image/png")).then((blob) => send(blob, "image/png"));
  pending.finally(() => {
    pending = null;
    if (readAgain) {
      readAgain = false;
      readPad();
    } else {
      result.dataset.state = "done";
    }
  });
}

async function send(body, type) {
  const mine = ++sequence;
  let answer;
  try {
    const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": type }, body });
    answer = await response.json();
    answer.ok = response.ok;
  } catch (error) {
    answer = { ok: false, message: `The server did not answer (${error}).` };
  }
  if (mine !== sequence) return;
  if (!answer.ok) {
    if (answer.error === "no_model") showNoModel(answer.message);
    showNothing(answer.message || "That image could not be read.", "error");
    return;
  }
  show(answer);
}

function showNothing(text, kind) {
  delete labelShown.dataset.label;
  message.textContent = text;
  message.className = "message" + (kind ? " " + kind : "");
  labelShown.textContent = "";
  bars.replaceChildren();
  seen.getContext("2d").clearRect(0, 0, 28, 28);
}

function show(answer) {
  message.textContent = answer.message;
  message.className = "message" + (answer.confident ? "" : " unsure");
  labelShown.textContent = answer.confident ? String(answer.label) : "?";
  labelShown.dataset.label = String(answer.label);
  bars.replaceChildren(
    ...answer.top.map((guess) => {
      const item = document.createElement("li");
      const digit = document.createElement("span");
      digit.textContent = String(guess.label);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * guess.probability).toFixed(1)}%`;
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = `${(100 * guess.probability).toFixed(1)}%`;
      item.append(digit, bar, value);
      return item;
    })
  );
  const image = seen.getContext("2d").createImageData(28, 28);
  answer.image.flat().forEach((grey, index) => {
    image.data.set([grey, grey, grey, 255], index * 4);
  });
  seen.getContext("2d").putImageData(image, 0, 0);
}

function sendFile(file) {
  if (!file) return;
  resetPad();
  result.dataset.state = "reading";
  send(file, file.type || "application/octet-stream").finally(() => { result.dataset.state = "done"; });
}

document.getElementById("upload").addEventListener("change", (event) => {
  sendFile(event.target.files[0]);
  event.target.value = "";
});

const dropZone = document.getElementById("drop-zone");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  sendFile(event.dataTransfer.files[0]);
});

function showNoModel(text) {
  const banner = document.getElementById("no-model");
  banner.textContent = text;
  banner.hidden = false;
}

async function showModelFacts() {
  try {
    const response = await fetch("/api/health");
    const facts = await response.json();
    if (facts.status === "no_model") {
      showNoModel(facts.message);
      return;
    }
    const accuracy = facts.test_accuracy == null ? "" : `, ${(100 * facts.test_accuracy).toFixed(2)}% on the test images`;
    document.getElementById("model-facts").textContent = `Model ${facts.model_file} (md5 ${facts.md5.slice(0, 8)}…${accuracy}).`;
  } catch (error) {
    showNoModel(`The server did not answer (${error}).`);
  }
}

resetPad();
showModelFacts();
