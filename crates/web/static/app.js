// Worklane console: live updates and actions for the server-rendered pages.
//
// Every action goes through the REST API (same validation, role checks and error codes);
// state-changing requests carry the session's CSRF token. Live parts of a page
// (`data-live`) are refreshed from the server when the event log or the agent's channel
// says something changed, at most once per interval, so a busy log does not flood the
// browser.
"use strict";

(function () {
  const EVENT_TYPES = [
    "TaskCreated", "TaskUpdated", "TaskCaptured", "TaskQueued", "TaskDistributed",
    "TaskDistributedQueue", "TaskRouteRequested", "TaskAssigned", "TaskCompleted",
    "TaskHeld", "TaskErrorHeld", "TaskResumed", "TaskRestarted", "TaskCanceled",
    "TaskRejected", "TaskReturned", "TaskStopped", "TaskOffered",
  ];

  const csrf = () => {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  };

  // The browser's time zone, for the server's "today" and its times.
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz) {
      document.cookie = "worklane_tz=" + encodeURIComponent(tz) +
        "; path=/; SameSite=Strict; max-age=31536000";
    }
  } catch (_) { /* keep the server's zone */ }

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.textContent = timeFormat.format(d);
        t.title = t.getAttribute("datetime");
      }
    });
  }

  async function api(method, url, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, message: "the server cannot be reached (" + e.message + ")" };
    }
    let data = null;
    const text = await r.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (r.ok) return { ok: true, status: r.status, data };
    const message = data && data.code
      ? data.code + ": " + data.message
      : "HTTP " + r.status;
    return { ok: false, status: r.status, message, data };
  }

  function flash(text, ok) {
    const f = document.getElementById("flash");
    if (!f) return;
    f.textContent = text;
    f.className = ok ? "ok" : "fail";
    f.hidden = false;
  }

  // Refreshing parts of the page from the server's rendering of the same URL.
  async function refresh(ids) {
    let r;
    try {
      r = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    } catch (_) { return; }
    if (r.redirected || r.status === 401) { location.reload(); return; }
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    for (const id of ids) {
      const now = document.getElementById(id);
      const next = doc.getElementById(id);
      if (!now || !next) continue;
      const checked = new Set(
        Array.from(now.querySelectorAll('input[name="task"]:checked')).map((c) => c.value));
      now.innerHTML = next.innerHTML;
      now.querySelectorAll('input[name="task"]').forEach((c) => { c.checked = checked.has(c.value); });
      localTimes(now);
    }
    countSelected();
    tick();
  }

  function liveIds() {
    const ids = Array.from(document.querySelectorAll("[data-live]")).map((e) => e.id).filter(Boolean);
    if (document.getElementById("agent-state")) ids.push("agent-state");
    return ids;
  }

  function throttled(fn, ms) {
    let timer = null;
    let again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function run() {
        if (again) { again = false; fn(); timer = setTimeout(run, ms); } else { timer = null; }
      }, ms);
    };
  }

  // Open streams are closed when the page is left: a page kept in the back/forward cache
  // would otherwise hold its connection, and browsers allow only six per server.
  const streams = [];
  window.addEventListener("pagehide", () => { streams.forEach((es) => es.close()); });
  window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });

  function follow(url, onEvent) {
    const state = document.getElementById("live-state");
    const es = new EventSource(url);
    streams.push(es);
    for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
    es.onopen = () => { if (state) state.textContent = "Live"; };
    es.onerror = () => { if (state) state.textContent = "Reconnecting…"; };
    return es;
  }

  function startLive() {
    const after = document.body.dataset.lastSeq || "0";
    const kinds = new Set(Array.from(document.querySelectorAll("[data-live]")).map((e) => e.dataset.live));
    if (kinds.has("agent")) {
      const agent = document.getElementById("desktop").dataset.agent;
      const update = throttled(() => refresh(liveIds()), 150);
      follow("/api/v1/agents/" + encodeURIComponent(agent) + "/stream?after=" + after, update);
    } else if (kinds.has("task")) {
      const id = (location.pathname.match(/\/tasks\/(\d+)/) || [])[1];
      const update = throttled(() => refresh(["main"]), 500);
      follow("/api/v1/events/stream?after=" + after, (e) => {
        try { if (String(JSON.parse(e.data).brokerId) === id) update(); } catch (_) { /* ignore */ }
      });
    } else if (kinds.has("events")) {
      const update = throttled(() => refresh(liveIds()), 1000);
      follow("/api/v1/events/stream?after=" + after, update);
    }
  }

  // Forms that call the API: `data-api="METHOD /path"`; `{action}` in the path is the
  // value of the button that submitted; other named buttons and fields make the body.
  function formBody(form, submitter) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.type === "submit" || el.name === "action" || el.disabled) continue;
      const v = el.value.trim();
      if (v === "") continue;
      if (el.dataset.type === "int") body[el.name] = Number.parseInt(v, 10);
      else if (el.dataset.type === "datetime") body[el.name] = new Date(v).toISOString();
      else body[el.name] = v;
    }
    if (submitter && submitter.name && submitter.name !== "action") body[submitter.name] = submitter.value;
    return body;
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (form.id === "sign-in") { e.preventDefault(); signIn(form); return; }
    if (!form.dataset.api) return;
    e.preventDefault();
    const [method, template] = form.dataset.api.split(" ");
    const submitter = e.submitter;
    const url = template.replace("{action}", submitter ? submitter.value : "");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    const r = await api(method, url, formBody(form, submitter));
    buttons.forEach((b) => { b.disabled = false; });
    if (r.ok) {
      flash(r.status === 204 ? "Nothing is waiting for you." : "Done.", true);
      await refresh(["main"]);
    } else {
      flash(r.message, false);
    }
  });

  // Bulk actions on the task list, one request per task, each with its own result.
  const BULK = {
    hold: (id, f) => ["POST", `/api/v1/tasks/${id}/hold`, f.reason ? { reason: f.reason } : {}, "held"],
    resume: (id, f) => ["POST", `/api/v1/tasks/${id}/resume`, f.reason ? { reason: f.reason } : {}, "resumed"],
    cancel: (id, f) => ["POST", `/api/v1/tasks/${id}/cancel`, f.reason ? { reason: f.reason } : {}, "canceled"],
    restart: (id, f) => ["POST", `/api/v1/tasks/${id}/restart`, f.reason ? { reason: f.reason } : {}, "restarted"],
    assign: (id, f) => ["POST", `/api/v1/tasks/${id}/assign`,
      Object.assign({ assignedToUser: f.agent }, f.reason ? { reason: f.reason } : {}), "assigned to " + f.agent],
    priority: (id, f) => ["PATCH", `/api/v1/tasks/${id}`,
      Object.assign({ priority: Number.parseInt(f.priority, 10) }, f.reason ? { reason: f.reason } : {}),
      "priority " + f.priority],
  };

  async function bulk(kind) {
    const form = document.getElementById("bulk");
    const f = {
      agent: form.elements.agent.value.trim(),
      priority: form.elements.priority.value.trim(),
      reason: form.elements.reason.value.trim(),
    };
    const ids = Array.from(document.querySelectorAll('input[name="task"]:checked')).map((c) => c.value);
    const out = document.getElementById("bulk-results");
    out.innerHTML = "";
    if (ids.length === 0) { flash("Select tasks first.", false); return; }
    if (kind === "assign" && !f.agent) { flash("Name the agent to assign to.", false); return; }
    if (kind === "priority" && !/^-?\d+$/.test(f.priority)) { flash("Give the priority as a whole number.", false); return; }
    let failed = 0;
    for (const id of ids) {
      const [method, url, body, done] = BULK[kind](id, f);
      const r = await api(method, url, body);
      const li = document.createElement("li");
      li.className = r.ok ? "ok" : "fail";
      li.textContent = "Task " + id + ": " + (r.ok ? done : r.message);
      out.appendChild(li);
      if (!r.ok) failed += 1;
    }
    flash(ids.length - failed + " of " + ids.length + " done" + (failed ? ", " + failed + " refused" : ""), failed === 0);
    await refresh(liveIds());
  }

  function countSelected() {
    const c = document.getElementById("selected-count");
    if (c) c.textContent = document.querySelectorAll('input[name="task"]:checked').length + " selected";
  }

  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.bulk) { e.preventDefault(); bulk(b.dataset.bulk); }
    if (b.hasAttribute("data-sign-out")) {
      await api("DELETE", "/api/v1/session");
      location.href = "/console/login";
    }
  });

  document.addEventListener("change", (e) => {
    if (e.target.id === "select-all") {
      document.querySelectorAll('input[name="task"]').forEach((c) => { c.checked = e.target.checked; });
    }
    countSelected();
  });

  async function signIn(form) {
    const problem = document.getElementById("sign-in-problem");
    problem.hidden = true;
    const r = await api("POST", "/api/v1/session", {
      user: form.elements.user.value.trim(),
      password: form.elements.password.value,
    });
    if (r.ok) { location.href = form.dataset.next || "/console"; return; }
    problem.textContent = r.status === 401 ? "Unknown user or wrong password." : r.message;
    problem.hidden = false;
  }

  // Offers' time left, on the server's clock (as of when its page part was rendered).
  function tick() {
    const desk = document.getElementById("desktop");
    if (!desk) return;
    if (!desk.dataset.loadedAt) desk.dataset.loadedAt = String(Date.now());
    const serverNow = Date.parse(desk.dataset.serverNow) + (Date.now() - Number(desk.dataset.loadedAt));
    document.querySelectorAll(".countdown[data-expires]").forEach((c) => {
      const left = Math.round((Date.parse(c.dataset.expires) - serverNow) / 1000);
      c.textContent = left <= 0 ? "expired"
        : Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    countSelected();
    tick();
    setInterval(tick, 1000);
    startLive();
  });
})();
