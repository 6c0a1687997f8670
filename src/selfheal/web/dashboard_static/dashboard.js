// The selfheal dashboard: one snapshot over server-sent events, rendered with textContent only
// (program output and check messages are never parsed as HTML).
"use strict";

const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("selfheal-token") || "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const GOOD = new Set(["RUNNING", "pass", "passed", "passing", "closed", "held", "available", "up"]);
const WARN = new Set(["STARTING", "BACKOFF", "STOPPING", "warn", "half_open", "passed_after_retry",
                      "degraded", "unknown", "running"]);
const NEUTRAL = new Set(["off", "STOPPED", "EXITED"]);
function badge(text) {
  const kind = GOOD.has(text) ? "ok" : WARN.has(text) ? "warn" : NEUTRAL.has(text) ? "neutral" : "bad";
  return el("span", { class: `badge ${kind}`, "data-status": text }, text);
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

function clock(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "–";
}

function table(headers, rows) {
  if (!rows.length) return el("p", { class: "empty" }, "none");
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))))));
}

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.style.display = "none"; }, 4000);
}

async function act(path, label) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(path, { method: "POST", headers });
  } catch (err) {
    toast(`${label}: ${err}`);
    return;
  }
  let detail = "";
  try { detail = (await response.json()).error || ""; } catch (err) { /* no body */ }
  if (response.status === 401 || response.status === 403) {
    toast(`${label} refused: ${detail || "a valid control token is needed"}`);
  } else if (!response.ok) {
    toast(`${label} failed: ${detail || response.status}`);
  } else {
    toast(`${label}: done`);
  }
}

function render(snap) {
  $("#title").textContent = `selfheal · ${snap.app || "daemon"}`;
  document.title = `selfheal · ${snap.app || "daemon"}`;
  const programs = (snap.programs || []).map((p) => [
    p.name, badge(p.state), p.pid || "–", seconds(p.uptime), p.restarts,
    el("td", { class: "wrap" }, p.reason || ""),
    el("td", {},
      el("button", { "data-action": "restart", "data-program": p.name,
                     onclick: () => act(`api/programs/${encodeURIComponent(p.name)}/restart`,
                                        `restart ${p.name}`) }, "Restart"), " ",
      el("button", { "data-action": "stop", "data-program": p.name,
                     onclick: () => act(`api/programs/${encodeURIComponent(p.name)}/stop`,
                                        `stop ${p.name}`) }, "Stop")),
  ]);
  const progRows = table(["program", "state", "pid", "uptime", "restarts", "reason", ""], programs);
  $("#programs .body").replaceChildren(progRows);
  for (const [i, p] of (snap.programs || []).entries()) {
    progRows.querySelectorAll("tbody tr")[i]?.setAttribute("data-program", p.name);
  }

  $("#checks .body").replaceChildren(table(["check", "status", "kind", "age", "output"],
    (snap.checks || []).map((c) => [c.name, badge(c.status), c.kind || "", seconds(c.age),
                                    el("td", { class: "wrap" }, c.output || "")])));

  $("#synthetic .body").replaceChildren(table(["scenario", "last", "ok / failed", "ratio", "history"],
    (snap.synthetic || []).map((s) => [s.name, badge(s.status), `${s.success_count} / ${s.failure_count}`,
      s.success_ratio === null || s.success_ratio === undefined ? "–" : `${(s.success_ratio * 100).toFixed(1)}%`,
      el("span", { class: "hist" }, ...(s.history || []).slice(-40).map((h) =>
        el("i", { class: h.outcome, title: `${clock(h.at)} ${h.outcome} ${seconds(h.duration)}` })))])));

  const breakers = (snap.breakers || []).map((b) => [`breaker ${b.name}`, badge(b.state), ""]);
  const features = (snap.features || []).map((f) => [`feature ${f.name}`,
    badge(f.available ? "available" : "degraded"), f.available ? "" : (f.fallback || "fallback")]);
  $("#breakers .body").replaceChildren(table(["name", "state", "using"], [...breakers, ...features]));

  $("#incidents .body").replaceChildren(table(["#", "subject", "opened", "by", "detect", "recover"],
    (snap.incidents || []).map((i) => [i.id, i.subject, clock(i.opened_at), i.opened_by,
      seconds(i.ttd), i.closed_at ? seconds(i.ttr) : badge("open")])));

  const chaos = snap.chaos || {};
  const chaosBody = [
    el("p", {}, "chaos is ", badge(chaos.enabled ? "enabled" : "off"), " ",
      el("button", { "data-action": "chaos-stop", onclick: () => act("api/chaos/stop", "chaos stop") },
         "Stop chaos")),
    table(["fault", "target", "since", "until"], (chaos.active || []).map((f) =>
      [f.kind, f.target, clock(f.started_at), clock(f.expires_at)])),
    table(["run", "outcome", "detect", "recover"], (chaos.runs || []).map((r) =>
      [r.name, badge(r.outcome), seconds(r.ttd), seconds(r.ttr)])),
  ];
  $("#chaos .body").replaceChildren(...chaosBody);
  document.body.dataset.updated = String(snap.time || Date.now() / 1000);
}

// Server-sent events read through fetch rather than EventSource: EventSource cannot send the
// Authorization header a daemon reachable from other machines asks for before it shows anything.
let stream = null; // the AbortController of the open stream

async function connect() {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const response = await fetch("api/stream", { headers, cache: "no-store", signal: controller.signal });
    if (response.status === 401 || response.status === 403) {
      $("#conn").textContent = "enter the control token to see this dashboard";
      return; // setting the token connects again
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split("\n").filter((line) => line.startsWith("data: "))
          .map((line) => line.slice(6)).join("\n");
        if (!data) continue;
        $("#conn").textContent = `live · ${new Date().toLocaleTimeString()}`;
        render(JSON.parse(data));
      }
    }
  } catch (err) {
    if (controller.signal.aborted) return; // replaced by a newer stream
  }
  if (stream === controller) {
    $("#conn").textContent = "reconnecting…";
    setTimeout(connect, 1000);
  }
}

$("#token").value = token;
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("selfheal-token", token);
  toast(token ? "token set for this tab" : "token cleared");
  connect();
});
connect();
