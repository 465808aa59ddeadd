// Dashboard and flow-run pages: live parts that catch up when their stream (re)opens, bulk cancel on the list (selection kept across live refreshes), and on a
// run's page the tabs (kept in the URL hash), Retry, and the live log with its filters.
// A run's page arrives with its selected tab's panel only: another panel is fetched
// (?fragment=NAME) the first time its tab opens, and only loaded panels refresh live.
// Log lines are built with textContent only: a line's text is never parsed as HTML.
"use strict";

(() => {
  const setState = (id, state) => skyrun.api("POST", `/api/flow_runs/${encodeURIComponent(id)}/set_state`, { state });

  // -- the list: selection and bulk cancel ---------------------------------------------
  function initList(table) {
    const selected = new Set();
    const button = document.getElementById("cancel-selected");
    const count = document.getElementById("selection-count");

    function sync() {
      const present = new Set([...table.querySelectorAll("input.select-run")].map((box) => box.value));
      for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
      table.querySelectorAll("input.select-run").forEach((box) => { box.checked = selected.has(box.value); });
      button.disabled = selected.size === 0;
      count.textContent = selected.size ? `${selected.size} selected` : "";
    }

    table.addEventListener("change", (event) => {
      const box = event.target.closest("input.select-run");
      if (!box) return;
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      sync();
    });
    // A live refresh replaces the rows: tick again what the user had ticked.
    table.addEventListener("skyrun:refreshed", sync);

    button.addEventListener("click", async () => {
      const ids = [...selected];
      if (!ids.length || !window.confirm(`Cancel ${ids.length} flow run${ids.length === 1 ? "" : "s"}?`)) return;
      button.disabled = true;
      const results = await Promise.allSettled(ids.map((id) => setState(id, { type: "CANCELLING", message: "Cancelled from the UI" })));
      const refused = [];
      results.forEach((result, index) => {
        if (result.status === "rejected") refused.push(`${ids[index]}: ${result.reason.message}`);
        else if (result.value.decision !== "ACCEPT") refused.push(`${ids[index]}: ${result.value.reason || result.value.decision}`);
        else selected.delete(ids[index]);
      });
      const done = ids.length - refused.length;
      skyrun.flash(refused.length ? `Cancelled ${done} of ${ids.length}; not cancelled: ${refused.join("; ")}` : `Cancelling ${done} flow run${done === 1 ? "" : "s"}.`, refused.length ? "error" : "ok");
      await skyrun.refresh();
      sync();
    });
    sync();
  }

  // -- one run: tabs -------------------------------------------------------------------
  function initTabs(tablist, logs) {
    const tabs = [...tablist.querySelectorAll('[role="tab"]')];
    function select(tab, focus) {
      for (const other of tabs) {
        const on = other === tab;
        other.setAttribute("aria-selected", on ? "true" : "false");
        other.tabIndex = on ? 0 : -1;
        const panel = document.getElementById(other.getAttribute("aria-controls"));
        panel.hidden = !on;
        const holder = on && panel.querySelector("[data-lazy]");
        if (holder) loadPanel(holder, logs);
      }
      if (focus) tab.focus();
      const hash = `#${tab.id.replace(/^tab-/, "")}`;
      if (window.location.hash !== hash) history.replaceState(null, "", hash);
    }
    tablist.addEventListener("click", (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab) select(tab, false);
    });
    tablist.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(document.activeElement);
      if (index < 0) return;
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(index + moves[event.key] + tabs.length) % tabs.length], true);
    });
    const wanted = document.getElementById(`tab-${window.location.hash.slice(1)}`);
    if (wanted && tabs.includes(wanted)) select(wanted, false);
  }

  // -- one run: panels fetched when their tab first opens ----------------------------
  // A loaded panel becomes a live fragment ([data-fragment]), refreshed on each change;
  // a change that comes while it loads may be newer than what it got: refresh then.
  // The logs panel is not re-fetched: its new lines come over the stream.
  async function loadPanel(holder, logs) {
    if (holder.dataset.loading) return;
    holder.dataset.loading = "true";
    const name = holder.dataset.lazy;
    let changed = false;
    const noteChange = () => { changed = true; };
    document.addEventListener("skyrun:change", noteChange);
    if (name === "logs") logs.loading();
    try {
      const url = new URL(window.location.href);
      url.hash = "";
      url.searchParams.delete("tab");
      url.searchParams.set("fragment", name);
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected && new URL(response.url).pathname === "/login") { window.location.assign(response.url); return; }
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      holder.innerHTML = await response.text();
      skyrun.localTimes(holder);
      holder.removeAttribute("data-lazy");
      holder.removeAttribute("aria-busy");
      if (name === "logs") logs.attach();
      else {
        holder.dataset.fragment = name;
        if (changed) skyrun.refresh();
      }
    } catch (error) {
      if (name === "logs") logs.failed();
      // Left lazy: opening the tab again tries again.
      const message = document.createElement("p");
      message.className = "flash flash-error";
      message.setAttribute("role", "alert");
      message.textContent = `Could not load this tab: ${error.message}. Open the tab again to retry.`;
      holder.replaceChildren(message);
    } finally {
      document.removeEventListener("skyrun:change", noteChange);
      delete holder.dataset.loading;
    }
  }

  // -- one run: cancel and retry -------------------------------------------------------
  // The server may decline (the run finished meanwhile): its answer is what the page says.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cancel]");
    if (!button || !window.confirm("Cancel this flow run?")) return;
    button.disabled = true;
    try {
      const answer = await setState(button.dataset.cancel, { type: "CANCELLING", message: "Cancelled from the UI" });
      if (answer.decision !== "ACCEPT") throw new Error(answer.reason || answer.decision);
      skyrun.flash(answer.state.type === "CANCELLED" ? "Cancelled." : "Cancelling the run.", "ok");
      skyrun.refresh();
    } catch (error) {
      skyrun.flash(`Could not cancel: ${error.message}`, "error");
      button.disabled = false;
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-retry]");
    if (!button) return;
    if (!window.confirm("Run this flow run again? A worker of its pool will pick it up.")) return;
    button.disabled = true;
    try {
      const answer = await skyrun.api("POST", `/api/flow_runs/${encodeURIComponent(button.dataset.retry)}/set_state`, {
        state: { type: "SCHEDULED", message: "Retried from the UI", scheduled_time: new Date().toISOString() },
        force: true,
      });
      if (answer.decision !== "ACCEPT") throw new Error(answer.reason || answer.decision);
      skyrun.flash("Scheduled again; a worker will pick it up.", "ok");
      skyrun.refresh();
    } catch (error) {
      skyrun.flash(`Could not retry: ${error.message}`, "error");
      button.disabled = false;
    }
  });

  // -- one run: live logs --------------------------------------------------------------
  // The stream sends lines after the page's cursor from the start, loaded tab or not:
  // before the tab is fetched they are dropped (the tab brings the newest lines), while
  // it loads they wait, and a line the tab already holds (id up to its cursor) is skipped.
  function initLogs(panel, marker) {
    const level = document.getElementById("log-level");
    const search = document.getElementById("log-search");
    let box = null;
    let pending = null;

    function visible(line) {
      const minimum = Number(level.value) || 0;
      const text = search.value.trim().toLowerCase();
      return Number(line.dataset.level) >= minimum && (!text || line.textContent.toLowerCase().includes(text));
    }
    function applyFilters() {
      if (!box) return;
      const empty = document.getElementById("log-empty");
      let shown = 0;
      box.querySelectorAll(".log-line").forEach((line) => { line.hidden = !visible(line); shown += line.hidden ? 0 : 1; });
      empty.hidden = shown > 0;
      empty.textContent = box.children.length ? "No log line matches." : "No log lines yet.";
    }
    level.addEventListener("change", applyFilters);
    search.addEventListener("input", applyFilters);

    function span(className, text) {
      const el = document.createElement("span");
      el.className = className;
      el.textContent = text;
      return el;
    }
    function append(lines) {
      const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
      let cursor = Number(box.dataset.cursor) || 0;
      for (const data of lines) {
        if (Number(data.id) <= cursor) continue;
        cursor = Number(data.id);
        const line = document.createElement("div");
        line.className = `log-line level-${String(data.level_name).toLowerCase().replace(/[^a-z0-9-]/g, "")}`;
        line.dataset.level = String(data.level);
        const time = document.createElement("time");
        time.setAttribute("datetime", data.timestamp);
        time.textContent = new Date(data.timestamp).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
        line.append(time, " ", span("log-level", data.level_name), " ", span("log-name", data.name), " ", span("log-message", data.message));
        line.hidden = !visible(line);
        box.append(line);
      }
      box.dataset.cursor = String(cursor);
      if (stick) box.scrollTop = box.scrollHeight;
      applyFilters();
    }
    function attach() {
      box = document.getElementById("log-lines");
      applyFilters();
      box.scrollTop = box.scrollHeight;
      if (pending && pending.length) append(pending);
      pending = null;
    }
    function receive(lines) {
      if (box) append(lines);
      else if (pending) pending.push(...lines);
    }
    if (panel.querySelector("#log-lines")) attach();
    return {
      cursor: marker.dataset.cursor || "0",
      lines: receive,
      loading: () => { pending = pending || []; },
      failed: () => { pending = null; },
      attach,
    };
  }

  // -- live updates ------------------------------------------------------------------
  // The stream compares what changed with the first fingerprint it takes, so a change
  // between the page's render (or the end of the previous stream) and that first look
  // would never show: each time the stream (re)opens, re-fetch the live parts once the
  // stream has surely taken that first look (it polls every 0.3 s).
  // A run page's stream also brings its new log lines (one connection per page).
  function initLive(marker, handlers) {
    const source = skyrun.listen(marker.dataset.topic, handlers);
    source.addEventListener("open", () => { window.setTimeout(() => skyrun.refresh(), CATCH_UP_MS); });
  }
  const CATCH_UP_MS = 1000;

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("runs-table");
    if (table) initList(table);
    const live = document.getElementById("live-topic");
    const logsPanel = document.getElementById("panel-logs");
    const logs = logsPanel && live ? initLogs(logsPanel, live) : null;
    const tablist = document.getElementById("run-tabs");
    if (tablist) initTabs(tablist, logs);
    if (live) initLive(live, logs ? { cursor: logs.cursor, lines: logs.lines } : {});
  });
})();
