/* Paydesk agent console: keeps the session page current, sends the agent's actions without
   reloading, announces changes to screen readers, and handles the shortcut keys.

   No framework and no build step. The server renders the page and computes every word
   (payments/console/presenters.py); this script only copies the texts of each new state
   into the elements marked data-bind, so the first render and the updates agree.

   Live updates: a poll of the state URL every data-poll-ms with the version shown
   (If-None-Match); 304 when nothing changed. When the network drops, the page says so and
   retries every second at most; when it is back, the next poll brings everything. */
(function () {
  "use strict";

  // --- The new-payment form: show only what the chosen kind of payment needs ---------------
  var paymentForm = document.querySelector(".payment-form");
  if (paymentForm) {
    var showFor = function () {
      var chosen = paymentForm.querySelector("input[name=mode]:checked");
      var mode = chosen ? chosen.value : "charge";
      paymentForm.querySelectorAll("[data-when]").forEach(function (part) {
        part.hidden = part.dataset.when !== mode;
      });
    };
    paymentForm.addEventListener("change", showFor);
    showFor();
  }
})();

(function () {
  "use strict";

  var root = document.getElementById("console-session");
  if (!root) return;

  var STOP = {};
  var stateUrl = root.dataset.stateUrl;
  var pollMs = parseInt(root.dataset.pollMs, 10) || 500;
  var token = root.dataset.token || "";
  var current = JSON.parse(document.getElementById("console-state").textContent);
  var version = current.version;
  var timer = null;
  var polling = false;
  var stopped = false;
  var failures = 0;

  // For the browser tests: which state the page showed when (latency per callback), and
  // a page id that survives only as long as the page is not reloaded.
  var updates = [{ v: current.last_event_id, t: Date.now() }];
  window.paydeskConsole = {
    updates: updates,
    pageId: String(Math.random()).slice(2),
    state: function () { return current; }
  };

  var announcer = root.querySelector("[data-announce]");
  var errorBox = root.querySelector("[data-error]");
  var connection = root.querySelector("[data-connection]");
  var shortcutsBox = root.querySelector("[data-shortcuts]");

  // --- Requests -------------------------------------------------------------------------

  function csrfToken() {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function headers(extra) {
    var h = { "Accept": "application/json" };
    if (token) {
      h["X-Console-Token"] = token;  // embedded: no cookie, the page's own token
    } else {
      h["X-CSRFToken"] = csrfToken();
    }
    Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
    return h;
  }

  function renewToken(response) {
    var fresh = response.headers.get("X-Console-Token");
    if (!fresh) return;
    token = fresh;
    root.dataset.token = fresh;
    root.querySelectorAll("input[name=console_token]").forEach(function (input) { input.value = fresh; });
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + String(Math.random()).slice(2);
  }

  // --- Polling --------------------------------------------------------------------------

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, ms);
  }

  function nextDelay() {
    if (failures) return Math.min(1000, 250 * Math.pow(2, failures - 1));
    if (document.hidden || current.terminal) return Math.max(pollMs, 5000);
    return pollMs;
  }

  function poll() {
    if (polling || stopped) return;
    polling = true;
    fetch(stateUrl, { headers: headers({ "If-None-Match": '"' + version + '"' }), cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        renewToken(response);
        if (response.status === 304) return null;
        if (response.status === 401) {
          return response.json().then(function (body) { stop(body.error.message); throw STOP; });
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (state) {
        back();
        if (state) apply(state);
      })
      .catch(function (error) {
        if (error !== STOP) lost();
      })
      .then(function () {
        polling = false;
        schedule(nextDelay());
      });
  }

  function lost() {
    failures += 1;
    if (connection.hidden) {
      connection.hidden = false;
      announce("Connection lost. Retrying.");
    }
  }

  function back() {
    if (!failures) return;
    failures = 0;
    connection.hidden = true;
    announce("Connection back.");
  }

  function stop(message) {
    stopped = true;
    clearTimeout(timer);
    showError(message);
    root.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
  }

  // --- Applying a state -------------------------------------------------------------------

  function setText(scope, name, value) {
    var el = scope.querySelector('[data-bind="' + name + '"]');
    if (el && el.textContent !== (value || "")) el.textContent = value || "";
    return el;
  }

  function setDisabled(button, disabled) {
    if (button && button.disabled !== disabled) button.disabled = disabled;
  }

  function apply(state) {
    var previous = current;
    var focusWasIn = document.activeElement;
    current = state;
    version = state.version;
    root.dataset.status = state.status;
    root.dataset.version = state.version;

    setText(root, "amount_text", state.amount_text);
    setText(root, "status_text", state.status_text);
    document.title = state.amount_text + " · " + state.status_text + " · Paydesk console";
    var notice = setText(root, "notice", state.notice);
    if (notice) notice.hidden = !state.notice;

    state.fields.forEach(function (f) {
      var row = root.querySelector('[data-field="' + f.name + '"]');
      if (!row) return;
      row.dataset.state = f.state;
      ["icon", "state_text", "value_text", "value_speech", "error_text", "request_label"].forEach(function (name) {
        setText(row, name, f[name]);
      });
      setDisabled(row.querySelector("[data-request]"), !f.can_request);
      setDisabled(row.querySelector("[data-confirm]"), !f.can_confirm);
    });

    setDisabled(root.querySelector("[data-complete]"), !state.can_complete);
    setDisabled(root.querySelector("[data-cancel]"), !state.can_cancel);
    setText(root, "missing", state.missing_text && !state.terminal ? "Still needed: " + state.missing_text : "");

    var result = root.querySelector("[data-result]");
    if (state.result) {
      result.dataset.kind = state.result.kind;
      ["icon", "title", "detail", "code_label", "code"].forEach(function (name) {
        setText(result, "result." + name, state.result[name]);
      });
      result.querySelector("[data-code]").hidden = !state.result.code;
    }
    result.hidden = !state.result;
    result.querySelector("[data-retry]").hidden = !state.can_retry;

    var timeline = root.querySelector("[data-timeline]");
    if (JSON.stringify(previous.timeline) !== JSON.stringify(state.timeline)) {
      timeline.textContent = "";
      state.timeline.forEach(function (line) {
        var li = document.createElement("li");
        var time = document.createElement("time");
        time.textContent = line.at;
        var text = document.createElement("span");
        text.textContent = line.text;
        li.appendChild(time);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(text);
        timeline.appendChild(li);
      });
      timeline.scrollTop = timeline.scrollHeight;
    }

    updates.push({ v: state.last_event_id, t: Date.now() });
    if (updates.length > 1000) updates.splice(0, updates.length - 1000);
    announce(changes(previous, state));

    // Keyboard users keep their place: when the result arrives they are taken to it, and a
    // button that became disabled under the focus hands it to its section.
    if (state.result && !previous.result) {
      var heading = result.querySelector("h2");
      heading.tabIndex = -1;
      heading.focus();
    } else if (focusWasIn && focusWasIn.disabled) {
      var title = document.getElementById("fields-title");
      title.tabIndex = -1;
      title.focus();
    }
  }

  function changes(previous, state) {
    var said = [];
    var before = {};
    previous.fields.forEach(function (f) { before[f.name] = f; });
    state.fields.forEach(function (f) {
      var old = before[f.name] || {};
      if (old.state_text === f.state_text && old.value_speech === f.value_speech && old.error_text === f.error_text) return;
      var words = f.label + ": " + f.state_text;
      if (f.value_speech) words += ", " + f.value_speech;
      if (f.error_text) words += ". " + f.error_text;
      said.push(words);
    });
    if (state.result && !previous.result) {
      var r = state.result;
      said.push(r.title + ". " + r.detail + (r.code ? " " + r.code_label + " " + r.code + "." : ""));
    } else if (state.status_text !== previous.status_text) {
      said.push(state.status_text);
    }
    return said.join(". ");
  }

  function announce(text) {
    if (!text) return;
    // Emptied first, so the same words said twice are announced twice.
    announcer.textContent = "";
    window.requestAnimationFrame(function () { announcer.textContent = text; });
  }

  function showError(message) {
    errorBox.textContent = "";
    if (message) {
      var p = document.createElement("p");
      p.textContent = message;
      errorBox.appendChild(p);
    }
    errorBox.hidden = !message;
  }

  // --- Actions ------------------------------------------------------------------------

  function send(form, button) {
    if (!button || button.disabled || button.getAttribute("aria-busy") === "true") return;
    var body = new URLSearchParams();
    if (form.dataset.action === "capture") {
      body.set("field", button.value);
      body.set("idempotency_key", newKey());  // a retried request is sent to Twilio once
    }
    button.setAttribute("aria-busy", "true");
    fetch(form.action, {
      method: "POST",
      headers: headers({ "Content-Type": "application/x-www-form-urlencoded" }),
      body: body.toString(),
      credentials: "same-origin"
    })
      .then(function (response) {
        renewToken(response);
        return response.json().then(function (payload) { return { ok: response.ok, payload: payload }; });
      })
      .then(function (answer) {
        if (answer.payload.redirect) {
          window.location.assign(answer.payload.redirect);
          return;
        }
        if (answer.payload.state) apply(answer.payload.state);
        showError(answer.ok ? "" : (answer.payload.error && answer.payload.error.message) || "That did not work.");
      })
      .catch(function () {
        showError("Paydesk did not answer. Check the connection, then try again.");
      })
      .then(function () { button.removeAttribute("aria-busy"); });
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset.action) return;  // "try another card" is an ordinary form post
    event.preventDefault();
    send(form, event.submitter || form.querySelector("button[type=submit]"));
  });

  // --- Shortcut keys (only when no text field has the focus; they can be turned off) ------

  try {
    if (window.localStorage.getItem("paydesk.console.shortcuts") === "off") shortcutsBox.checked = false;
  } catch (e) { /* storage blocked in a third-party frame: keep the default */ }
  shortcutsBox.addEventListener("change", function () {
    try { window.localStorage.setItem("paydesk.console.shortcuts", shortcutsBox.checked ? "on" : "off"); } catch (e) { /* ignore */ }
  });

  document.addEventListener("keydown", function (event) {
    if (!shortcutsBox.checked || event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
    var target = event.target;
    if (target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) || (target && target.isContentEditable)) return;
    var button = null;
    if (/^[1-9]$/.test(event.key)) {
      button = root.querySelectorAll("[data-request]")[parseInt(event.key, 10) - 1] || null;
    } else if (event.key === "c" || event.key === "C") {
      button = root.querySelector("[data-complete]");
    }
    if (!button) return;
    event.preventDefault();
    if (button.disabled) {
      announce(button.textContent.replace(/\s+/g, " ").trim() + ": not available now.");
      return;
    }
    button.focus();
    button.form.requestSubmit(button);
  });

  // --- Go ---------------------------------------------------------------------------------

  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });
  window.addEventListener("online", function () { schedule(0); });
  schedule(pollMs);
})();
