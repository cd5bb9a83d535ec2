/* The agent page's try-it panel: a streamed chat with the agent on the playground channel.
 *
 * "New chat" (or the first message) creates a playground conversation; the panel opens the
 * staff websocket for it before posting, so the streamed answer is seen from its first
 * word. Items are drawn with textContent only. After a turn ends the panel asks the server
 * for anything after the last seq it holds, in case a frame was lost. */
(function () {
  "use strict";
  var root = document.getElementById("cs-try");
  if (!root) return;

  var log = document.getElementById("cs-try-log");
  var form = document.getElementById("cs-try-form");
  var input = document.getElementById("cs-try-text");
  var send = document.getElementById("cs-try-send");
  var state = document.getElementById("cs-try-state");
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var PLACEHOLDER = "00000000-0000-0000-0000-000000000000";

  var conversation = null;
  var socket = null;
  var lastSeq = 0;
  var streamEl = null;

  function url(template) { return template.replace(PLACEHOLDER, conversation); }

  function post(target, body) {
    return fetch(target, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error((data.error && data.error.message) || ("HTTP " + response.status));
        return data;
      });
    });
  }

  function line(className, who, text) {
    var item = document.createElement("div");
    item.className = "cs-item " + className;
    var bubble = document.createElement("div");
    bubble.className = "cs-bubble";
    var meta = document.createElement("div");
    meta.className = "cs-meta";
    var name = document.createElement("span");
    name.className = "cs-who";
    name.textContent = who;
    meta.appendChild(name);
    var body = document.createElement("div");
    body.className = "cs-text";
    body.textContent = text;
    bubble.appendChild(meta);
    bubble.appendChild(body);
    item.appendChild(bubble);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return body;
  }

  function note(className, text) {
    var el = document.createElement("div");
    el.className = className;
    el.textContent = text;
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
  }

  function addItem(item) {
    if (item.seq <= lastSeq) return;
    lastSeq = item.seq;
    if (item.kind === "user") line("cs-user", "You (as the customer)", item.text);
    else if (item.kind === "assistant") {
      if (streamEl) { streamEl.parentNode.parentNode.remove(); streamEl = null; }
      line("cs-assistant", "Agent", item.text);
    } else if (item.kind === "function_call") note("cs-try-tool", "called " + item.tool_name + " " + item.arguments);
    else if (item.kind === "function_output") note("cs-try-tool", item.tool_name + " returned " + item.text);
    else if (item.kind === "staff") line("cs-staff", "Staff", item.text);
  }

  function catchUp() {
    if (!conversation) return;
    fetch(url(root.dataset.itemsUrl) + "?after=" + lastSeq, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) { (data.items || []).forEach(addItem); })
      .catch(function () {});
  }

  function handle(event) {
    switch (event.type) {
      case "message": addItem(event.message); break;
      case "text.delta":
        if (!streamEl) streamEl = line("cs-assistant cs-streaming", "Agent", "");
        streamEl.textContent += event.delta;
        log.scrollTop = log.scrollHeight;
        break;
      case "turn.started": state.textContent = "answering with " + (event.model_label || event.model) + "…"; break;
      case "tool.started": state.textContent = "running " + event.name + "…"; break;
      case "turn.completed": state.textContent = ""; catchUp(); break;
      case "turn.failed":
        if (streamEl) { streamEl.parentNode.parentNode.remove(); streamEl = null; }
        note("cs-try-error", "The turn failed: " + (event.error || event.error_code));
        state.textContent = "";
        break;
      case "conversation.updated":
        if (event.ai_paused) state.textContent = "The agent handed this chat to a person (AI paused).";
        break;
    }
  }

  function openSocket(path) {
    return new Promise(function (resolve, reject) {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + path);
      ws.onopen = function () { resolve(ws); };
      ws.onerror = function () { reject(new Error("Could not open the live connection.")); };
      ws.onmessage = function (message) {
        try { handle(JSON.parse(message.data)); } catch (e) { /* not JSON: ignore */ }
      };
      ws.onclose = function () { if (socket === ws) socket = null; };
    });
  }

  function start() {
    if (socket) socket.close();
    socket = null;
    conversation = null;
    lastSeq = 0;
    streamEl = null;
    log.textContent = "";
    return post(root.dataset.startUrl).then(function (data) {
      conversation = data.conversation;
      state.textContent = data.model_label;
      return openSocket(data.ws);
    }).then(function (ws) { socket = ws; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    send.disabled = true;
    var ready = conversation && socket ? Promise.resolve() : start();
    ready.then(function () {
      var clientId = "try-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
      return post(url(root.dataset.messageUrl), { text: text, client_id: clientId });
    }).then(function (data) {
      input.value = "";
      addItem(data.message);
      if (data.turn) state.textContent = "thinking…";
    }).catch(function (error) {
      note("cs-try-error", error.message);
    }).then(function () {
      send.disabled = false;
      input.focus();
    });
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : send.click();
    }
  });

  document.getElementById("cs-try-new").addEventListener("click", function () {
    start().catch(function (error) { note("cs-try-error", error.message); });
  });
})();
