/* Staff console pages: copy buttons, "load earlier", live updates of the conversation page
 * and typing hints both ways (the reply box's to the customer, the customer's shown here).
 *
 * Live updates come from the conversation websocket (ws/conversations/<id>/, the widget's
 * socket, which gives a staff session of this site the staff role; docs/widget.md). A frame
 * is only a hint: new items are fetched from the server as HTML rendered (and escaped) by the same
 * template as the page, after the last seq this page holds. Streamed text is shown with
 * textContent, never as markup. */
(function () {
  "use strict";

  // --- copy buttons -------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".cs-copy") : null;
    if (!button) return;
    var target = document.getElementById(button.dataset.copy);
    if (!target) return;
    var label = button.textContent;
    function report(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var ok;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      report(ok ? "Copied" : "Selected: press Ctrl+C");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(target.textContent).then(function () { report("Copied"); }, fallback);
    } else {
      fallback();
    }
  });

  var root = document.getElementById("cs-conversation");
  if (!root) return;

  var itemsUrl = root.dataset.itemsUrl;
  var lastSeq = parseInt(root.dataset.lastSeq || "0", 10);
  var transcript = document.getElementById("cs-transcript");
  var items = document.getElementById("cs-items");
  var earlier = document.getElementById("cs-earlier");
  var streaming = document.getElementById("cs-streaming");
  var streamingText = document.getElementById("cs-streaming-text");
  var streamingState = document.getElementById("cs-streaming-state");
  var activity = document.getElementById("cs-activity");
  var liveState = document.getElementById("cs-live-state");
  var STATUS = { open: "Open", waiting_on_staff: "Waiting on staff", resolved: "Resolved" };

  function nearBottom() {
    return transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
  }
  function toBottom() { transcript.scrollTop = transcript.scrollHeight; }

  function scrollToHash() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && transcript.contains(target)) {
      transcript.scrollTop = target.offsetTop - transcript.offsetTop - 20;
      target.classList.add("cs-highlight");
    } else {
      toBottom();
    }
  }
  scrollToHash();

  function parseState(header) {
    try { return header ? JSON.parse(header) : null; } catch (e) { return null; }
  }

  function fetchItems(query) {
    return fetch(itemsUrl + "?" + query, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text().then(function (html) {
          return {
            html: html,
            first: parseInt(response.headers.get("X-First-Seq") || "0", 10),
            last: parseInt(response.headers.get("X-Last-Seq") || "0", 10),
            hasEarlier: response.headers.get("X-Has-Earlier") === "1",
            state: parseState(response.headers.get("X-Conversation-State"))
          };
        });
      });
  }

  // --- load earlier -------------------------------------------------------------------
  earlier.addEventListener("click", function (event) {
    var button = event.target.closest(".cs-load-earlier");
    if (!button) return;
    button.disabled = true;
    fetchItems("before=" + encodeURIComponent(button.dataset.before)).then(function (page) {
      var before = transcript.scrollHeight;
      items.insertAdjacentHTML("afterbegin", page.html);
      transcript.scrollTop += transcript.scrollHeight - before;
      if (page.hasEarlier && page.first) {
        button.dataset.before = String(page.first);
        button.disabled = false;
      } else {
        button.remove();
      }
    }).catch(function () { button.disabled = false; });
  });

  // --- catching up by seq -------------------------------------------------------------
  var busy = false;
  var pending = null; // the lowest seq that must be (re)rendered, or 0 for "after lastSeq"

  function removeFrom(seq) {
    Array.prototype.slice.call(items.querySelectorAll(".cs-item[data-seq]")).forEach(function (node) {
      if (parseInt(node.dataset.seq, 10) >= seq) node.remove();
    });
  }

  function sync(fromSeq) {
    // fromSeq: re-render every item from this seq on (turn status changed); 0: just new items.
    if (pending === null || (fromSeq && (pending === 0 || fromSeq < pending))) pending = fromSeq || 0;
    if (busy) return;
    var from = pending;
    pending = null;
    busy = true;
    var after = from ? from - 1 : lastSeq;
    var stick = nearBottom();
    fetchItems("after=" + after).then(function (page) {
      if (from) removeFrom(from);
      var empty = items.querySelector(".cs-empty");
      if (page.html.trim() && empty) empty.remove();
      if (page.html.trim()) items.insertAdjacentHTML("beforeend", page.html);
      if (page.last && page.last > lastSeq) lastSeq = page.last;
      if (page.last && page.last > after + 99) pending = pending === null ? 0 : pending; // more to fetch
      if (page.state) applyState(page.state);
      if (stick) toBottom();
    }).catch(function () {
      // The server is unreachable: the next event or reconnect ("ready") syncs again.
    }).then(function () {
      busy = false;
      if (pending !== null) sync(pending);
    });
  }

  function lastCustomerSeq() {
    var nodes = items.querySelectorAll(".cs-user[data-seq]");
    return nodes.length ? parseInt(nodes[nodes.length - 1].dataset.seq, 10) : 0;
  }

  var refreshTimer = null;
  function refreshTail() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var seq = lastCustomerSeq();
      sync(seq || 0);
    }, 120);
  }

  // --- streaming answer ---------------------------------------------------------------
  var streamingTurn = null;
  var commentary = "", commentaryTurn = null;
  function showActivity(text) {
    if (!text) { activity.hidden = true; activity.textContent = ""; return; }
    activity.textContent = text;
    activity.hidden = false;
  }
  function stopStreaming() {
    streaming.hidden = true;
    streamingText.textContent = "";
    streamingTurn = null;
  }

  function applyState(state) {
    if (state.status) {
      var badge = root.querySelector("[data-state=status]");
      badge.className = "cs-status cs-status-" + state.status;
      badge.textContent = STATUS[state.status] || state.status;
    }
    if (typeof state.ai_paused === "boolean") {
      root.querySelector("[data-state=paused]").hidden = !state.ai_paused;
    }
    if (typeof state.has_failed_turn === "boolean") {
      root.querySelector("[data-state=failed]").hidden = !state.has_failed_turn;
      var alert = document.getElementById("cs-failed");
      if (alert && !state.has_failed_turn) alert.hidden = true;
    }
    Array.prototype.forEach.call(root.querySelectorAll("[data-show-when]"), function (form) {
      var when = form.dataset.showWhen;
      var show = (when === "paused" && state.ai_paused === true) ||
        (when === "running" && state.ai_paused === false) ||
        (when === "resolved" && state.status === "resolved") ||
        (when === "unresolved" && state.status && state.status !== "resolved");
      if (when === "paused" || when === "running") { if (typeof state.ai_paused === "boolean") form.hidden = !show; }
      else if (state.status) form.hidden = !show;
    });
  }

  function handle(event) {
    switch (event.type) {
      case "ready":
        applyState(event);
        refreshTail();
        break;
      case "message":
        if (event.message && event.message.kind === "user") showCustomerTyping(false);
        if (event.seq > lastSeq) sync(0);
        if (event.message && event.message.kind === "assistant" && event.turn === streamingTurn) stopStreaming();
        break;
      case "text.delta":
        if (streamingTurn !== event.turn) { streamingText.textContent = ""; streamingTurn = event.turn; }
        var stick = nearBottom();
        streaming.hidden = false;
        streamingState.textContent = "writing…";
        streamingText.textContent += event.delta;
        if (stick) toBottom();
        break;
      case "turn.commentary":
        commentary = (commentaryTurn === event.turn ? commentary : "") + event.delta;
        commentaryTurn = event.turn;
        showActivity("AI (commentary, not shown as the answer): " + commentary);
        break;
      case "tool.started":
        showActivity("AI is running " + event.name + "…");
        break;
      case "tool.finished":
        showActivity(event.ok ? "" : "The tool " + event.name + " failed; the AI continues.");
        break;
      case "turn.queued":
        showActivity("A turn is queued (attempt " + event.attempt + ").");
        refreshTail();
        break;
      case "turn.started":
        showActivity("AI is answering (" + (event.model_label || event.model) + ")…");
        refreshTail();
        break;
      case "turn.completed":
        showActivity("");
        stopStreaming();
        refreshTail();
        break;
      case "turn.failed":
        stopStreaming();
        showActivity("The AI's answer failed: " + (event.error || event.error_code) + " — retry it below.");
        refreshTail();
        break;
      case "turn.cancelled":
        stopStreaming();
        showActivity("");
        refreshTail();
        break;
      case "conversation.updated":
        applyState(event);
        break;
      case "typing":
        if (event.role === "visitor") showCustomerTyping(event.active !== false);
        break;
    }
  }

  // --- typing, both ways ----------------------------------------------------------------
  // The reply box (never the internal note) tells the customer that a person is writing:
  // a hint at most every 3 s while there is text, and "stopped" when the box is emptied,
  // left or sent. The server relays a hint only from staff who may reply. The customer's
  // own hints show under the transcript until they stop, send, or go quiet for 6 s.
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 6000;
  var live = null;
  var reply = document.getElementById("cs-reply");
  var customerTyping = document.getElementById("cs-typing");
  var typingSentAt = 0;
  var typingTimer = null;
  function sendTyping(active) {
    if (live && live.readyState === WebSocket.OPEN) live.send(JSON.stringify({ type: "typing", active: active }));
  }
  function typingStopped() {
    if (typingSentAt) sendTyping(false);
    typingSentAt = 0;
  }
  if (reply) {
    reply.addEventListener("input", function () {
      if (!reply.value.trim()) { typingStopped(); return; }
      var now = Date.now();
      if (now - typingSentAt >= TYPING_EVERY_MS) { sendTyping(true); typingSentAt = now; }
    });
    reply.addEventListener("blur", typingStopped);
    if (reply.form) reply.form.addEventListener("submit", typingStopped);
  }
  function showCustomerTyping(active) {
    clearTimeout(typingTimer);
    if (!customerTyping) return;
    var stick = nearBottom();
    customerTyping.hidden = !active;
    if (active) {
      typingTimer = setTimeout(function () { customerTyping.hidden = true; }, TYPING_SHOWN_MS);
      if (stick) toBottom();
    }
  }

  // --- the socket ---------------------------------------------------------------------
  var retries = 0;
  function setLive(text, on) {
    liveState.textContent = text;
    liveState.classList.toggle("cs-live-on", !!on);
  }
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    // Stored items after `after` follow `ready` (the catch-up); earlier ones are on the page.
    var socket = new WebSocket(scheme + location.host + root.dataset.wsPath + "?after=" + lastSeq);
    live = socket;
    socket.onopen = function () { retries = 0; setLive("live", true); };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      handle(event);
    };
    socket.onclose = function () {
      setLive("reconnecting…", false);
      var delay = Math.min(10000, 500 * Math.pow(2, retries++));
      setTimeout(connect, delay);
    };
  }
  if (window.WebSocket) connect(); else setLive("no live updates in this browser", false);
})();
