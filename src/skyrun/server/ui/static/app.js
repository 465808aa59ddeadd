// skyrun's UI: calls to /api with the session's CSRF token, JSON forms, action
// buttons, live fragments over server-sent events, local times. No inline script
// anywhere (the Content-Security-Policy forbids it): pages declare behaviour with
// data- attributes and this file wires it.
"use strict";

const skyrun = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiError extends Error {
    constructor(status, detail) {
      super(ApiError.text(detail) || `the server answered ${status}`);
      this.status = status;
      this.detail = detail;
    }
    static text(detail) {
      if (typeof detail === "string") return detail;
      if (Array.isArray(detail)) {
        return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
      }
      return detail ? JSON.stringify(detail) : "";
    }
  }

  async function api(method, url, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
    return data;
  }

  function flash(message, kind = "info") {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = `flash flash-${kind}`;
  }

  // Shows a 422's messages next to the fields they name ([data-error-for="a.b"]), the rest at the form.
  function showErrors(form, error) {
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.hidden = true; el.textContent = ""; });
    const rest = [];
    const details = Array.isArray(error.detail) ? error.detail : [{ loc: [], msg: error.message }];
    for (const d of details) {
      const loc = (d.loc || []).filter((p) => p !== "body").map(String);
      let target = null;
      for (let n = loc.length; n > 0 && !target; n--) {
        target = form.querySelector(`[data-error-for="${CSS.escape(loc.slice(0, n).join("."))}"]`);
      }
      if (target) {
        target.textContent = target.textContent ? `${target.textContent}; ${d.msg}` : d.msg;
        target.hidden = false;
      } else rest.push(loc.length ? `${loc.join(".")}: ${d.msg}` : d.msg);
    }
    const general = form.querySelector('[data-error-for="_form"]');
    if (rest.length) {
      if (general) { general.textContent = rest.join("; "); general.hidden = false; } else flash(rest.join("; "), "error");
    }
  }

  function coerce(input) {
    const type = input.dataset.type;
    const raw = input.type === "checkbox" ? input.checked : input.value;
    if (type === "bool") return input.type === "checkbox" ? input.checked : raw === "true";
    if (raw === "" && !("keepEmpty" in input.dataset)) return undefined;
    if (type === "int") return Number.parseInt(raw, 10);
    if (type === "number") return Number(raw);
    if (type === "list") return String(raw).split(",").map((s) => s.trim()).filter(Boolean);
    if (type === "json") {
      try { return JSON.parse(raw); } catch (e) { throw new FieldError(input.name, `not valid JSON: ${e.message}`); }
    }
    return raw;
  }

  class FieldError extends Error {
    constructor(name, msg) { super(msg); this.detail = [{ loc: name.split("."), msg }]; }
  }

  // A form's named fields as a JSON object; dotted names nest ("job_variables.region").
  function formBody(form) {
    const body = {};
    for (const input of form.querySelectorAll("[name]")) {
      if (input.disabled || input.name === "csrf_token" || "skip" in input.dataset) continue;
      if (input.type === "radio" && !input.checked) continue;
      const value = coerce(input);
      if (value === undefined) continue;
      const path = input.name.split(".");
      let node = body;
      for (const part of path.slice(0, -1)) node = node[part] ??= {};
      node[path[path.length - 1]] = value;
    }
    return body;
  }

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(data && data[key] !== undefined ? data[key] : ""));
  }

  const hooks = {};
  // Page scripts register body builders: data-body-hook="name" on a form.
  function hook(name, fn) { hooks[name] = fn; }

  async function submitForm(form) {
    const button = form.querySelector('[type="submit"]');
    if (button) button.disabled = true;
    try {
      let body = formBody(form);
      if (form.dataset.bodyHook) body = await hooks[form.dataset.bodyHook](body, form);
      const data = await api(form.dataset.method || "POST", fill(form.dataset.api, body), body);
      form.dispatchEvent(new CustomEvent("skyrun:done", { detail: data }));
      if (form.dataset.then) window.location.assign(fill(form.dataset.then, data));
      else { flash(form.dataset.done || "Saved.", "ok"); refresh(); }
    } catch (error) {
      showErrors(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function runAction(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      const data = await api(button.dataset.method || "POST", button.dataset.action, body);
      // A state proposal the server declined answers 200 with its decision and reason.
      if (data && data.decision && data.decision !== "ACCEPT") throw new Error(data.reason || data.decision);
      if (button.dataset.then) window.location.assign(fill(button.dataset.then, data));
      else { flash(button.dataset.done || "Done.", "ok"); refresh(); }
    } catch (error) {
      flash(error.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  // A selector that finds the same control again in a re-rendered fragment (by id, link
  // target or field name), so a live refresh does not throw a keyboard user's focus away.
  function focusKey(el) {
    if (el.id) return `#${CSS.escape(el.id)}`;
    const href = el.getAttribute("href");
    if (href) return `${el.tagName.toLowerCase()}[href="${CSS.escape(href)}"]`;
    const name = el.getAttribute("name");
    if (name) {
      const value = el.type === "checkbox" || el.type === "radio" ? `[value="${CSS.escape(el.value)}"]` : "";
      return `${el.tagName.toLowerCase()}[name="${CSS.escape(name)}"]${value}`;
    }
    return null;
  }

  // Re-fetch every live fragment of the page ([data-fragment="name"]), coalescing bursts.
  let refreshing = null;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      const parts = document.querySelectorAll("[data-fragment]");
      await Promise.all([...parts].map(async (el) => {
        const url = new URL(window.location.href);
        url.searchParams.set("fragment", el.dataset.fragment);
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        // The session ended: go to the login page rather than show it inside a fragment.
        if (response.redirected && new URL(response.url).pathname === "/login") { window.location.assign(response.url); return; }
        if (!response.ok) return;
        const html = await response.text();
        const focused = document.activeElement && el.contains(document.activeElement) ? focusKey(document.activeElement) : null;
        el.innerHTML = html;
        if (focused) el.querySelector(focused)?.focus();
        el.dispatchEvent(new CustomEvent("skyrun:refreshed", { bubbles: true }));
      }));
      localTimes(document);
    })();
    try { await refreshing; } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  }

  function listen(topic, handlers = {}) {
    const source = new EventSource(`/ui/events?topic=${encodeURIComponent(topic)}${handlers.cursor ? `&cursor=${encodeURIComponent(handlers.cursor)}` : ""}`);
    source.addEventListener("change", () => { refresh(); document.dispatchEvent(new CustomEvent("skyrun:change")); });
    // The stream compares against what it first sees, so a change made between the page's
    // render and the stream's (re)connection would be missed: fetch the live parts then.
    source.addEventListener("open", () => { if (document.querySelector("[data-fragment]")) refresh(); });
    for (const [event, fn] of Object.entries(handlers)) {
      if (event !== "cursor") source.addEventListener(event, (e) => fn(JSON.parse(e.data)));
    }
    return source;
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      if (!el.title) return;
      const when = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(when.getTime())) el.title = when.toLocaleString();
    });
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    submitForm(form);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    event.preventDefault();
    runAction(button);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const topic = document.body.dataset.liveTopic;
    if (topic) listen(topic);
    localTimes(document);
  });

  return { api, flash, showErrors, formBody, hook, refresh, listen, localTimes, ApiError };
})();
window.skyrun = skyrun;
