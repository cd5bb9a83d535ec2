/* The server's events: one handler per event type of the conversation socket
 * (`HANDLERS`), each updating the state and asking the transcript to draw. */

import { el } from "./dom.js";

const STAFF_TYPING_MS = 6000;

/* Event type -> handler method. Types not listed are ignored (newer servers may add some). */
const HANDLERS = {
  ready: "_onReady",
  caught_up: "_onCaughtUp",
  message: "_onMessage",
  "turn.queued": "_onTurnQueued",
  "turn.started": "_onTurnStarted",
  "text.delta": "_onDelta",
  "turn.commentary": "_onCommentary",
  "tool.started": "_onToolStarted",
  "tool.finished": "_onToolFinished",
  "turn.completed": "_onTurnCompleted",
  "turn.failed": "_onTurnFailed",
  "turn.cancelled": "_onTurnCancelled",
  "conversation.updated": "_onConversationUpdated",
  typing: "_onTyping",
  read: "_onRead",
  ack: "_onAck",
  error: "_onError",
};

export const EventsMixin = (Base) =>
  class extends Base {
    _dispatch(data) {
      let event;
      try {
        event = JSON.parse(data);
      } catch (e) {
        return;
      }
      const handler = HANDLERS[event.type];
      if (handler) this[handler](event);
    }

    _onReady(event) {
      this._attempt = 0;
      this._setStatus(navigator.onLine === false ? this.t("offline") : "");
      this.catchingUp = this.lastSeq === 0; // a first load is history, not news
      this.session.model = event.model;
      this.session.agent = event.agent;
      this.resolution = event.resolution || 0;
      this.rated = Boolean(event.rated);
      this._setConversationState(event.status, event.ai_paused);
      this.readyTurns = event.turns || [];
      this.activeTurns = new Set(this.readyTurns.filter((t) => t.status === "queued" || t.status === "running").map((t) => t.id));
      this._renderTexts();
      this._markRead(event.read_seq || 0);
    }

    _onCaughtUp() {
      this.socketReady = true;
      for (const turn of this.readyTurns) {
        if (turn.status === "failed" || turn.status === "cancelled") this._showProblem(turn);
      }
      this.catchingUp = false;
      const stillFailed = new Set(this.readyTurns.map((t) => t.id));
      for (const id of [...this.problems.keys()]) if (!stillFailed.has(id)) this._removeProblem(id);
      for (const item of this.pending.values()) {
        if (!item.unsent) this._sendFrame({ type: "message", text: item.text, client_id: item.id });
      }
      if (this._wantHandoff) {
        // The visitor asked for a person before the conversation existed.
        this._wantHandoff = false;
        this.$handoff.removeAttribute("aria-disabled");
        this.requestHandoff();
      }
      this._renderRating();
      this._renderTyping();
      this._scrollToEnd();
    }

    _onMessage(event) {
      const message = event.message;
      if (!message || this.items.has(event.seq)) return;
      this.lastSeq = Math.max(this.lastSeq, event.seq);
      let node = null;
      if (message.kind === "user") node = this._storedUser(message);
      else if (message.kind === "assistant") node = this._storedAssistant(message, event.model_label);
      else if (message.kind === "staff") node = this._storedStaff(message);
      else if (message.kind === "function_call") node = this._storedCall(message);
      else if (message.kind === "function_output") this._storedOutput(message);
      this.items.set(event.seq, node);
      // An answer, a tool call or a staff reply exists only after what came before was read.
      if (message.kind !== "user" && message.kind !== "function_output") this._markRead(event.seq);
    }

    _onTurnQueued(event) {
      this.activeTurns.add(event.turn);
      this._renderTyping();
    }

    _onTurnStarted(event) {
      this.activeTurns.add(event.turn);
      const view = this._turn(event.turn);
      view.live = true; // deltas are drawn only for turns seen starting on this socket
      this._markRead(this.lastSeq); // the model is sent everything stored so far
      this._renderTyping();
    }

    _onDelta(event) {
      const view = this.turns.get(event.turn);
      if (!view || !view.live) return;
      if (!view.current) {
        const bubble = el("div", { className: "bubble" });
        const node = el("li", { className: "msg assistant streaming", "aria-busy": "true" }, [bubble]);
        this._identify(node, "assistant");
        view.current = { node, bubble, text: "", final: false };
        view.segments.push(view.current);
        this._append(node);
      }
      view.current.text += event.delta;
      view.current.bubble.textContent = view.current.text;
      this._renderTyping();
      this._followLog();
    }

    /* The model's commentary ("Let me look that up"): progress, drawn as a muted line
       that goes away with the turn's draft; never an answer bubble. */
    _onCommentary(event) {
      const view = this.turns.get(event.turn);
      if (!view || !view.live) return;
      if (!view.commentary) {
        const node = el("li", { className: "commentary", "aria-live": "polite" });
        view.commentary = { node, text: "", final: false, commentary: true };
        view.segments.push(view.commentary);
        this._append(node);
      }
      view.commentary.text += event.delta;
      view.commentary.node.textContent = view.commentary.text;
      view.current = null; // the answer, when it comes, starts its own bubble
      this._followLog();
    }

    _onToolStarted(event) {
      const view = this._turn(event.turn);
      view.current = null; // text after the tool call starts a new bubble below it
      const row = this._toolRow(event.name, "running", this._toolText(event.name, {}, "running", event.activity));
      row.dataset.activity = event.activity || "";
      this.toolRows.set(event.call_id, row);
      view.calls.push(event.call_id);
      this._append(row);
      this._renderTyping();
    }

    _onToolFinished(event) {
      const row = this.toolRows.get(event.call_id);
      if (row) row.className = "tool " + (event.ok ? "ok" : "failed");
    }

    _onTurnCompleted(event) {
      this.activeTurns.delete(event.turn);
      if (event.message_seq && event.message_seq > this.lastSeq) {
        // The answer's hint was lost on the way: ask for what we are missing.
        this._sendFrame({ type: "resume", after: this.lastSeq });
      } else {
        this._discardDraft(event.turn);
      }
      this._renderTyping();
    }

    _onTurnFailed(event) {
      this.activeTurns.delete(event.turn);
      this._discardDraft(event.turn, { tools: true });
      this._showProblem({ id: event.turn, status: "failed", error_code: event.error_code, retryable: event.retryable });
      this._renderTyping();
    }

    _onTurnCancelled(event) {
      this.activeTurns.delete(event.turn);
      this._discardDraft(event.turn, { tools: true });
      this._showProblem({ id: event.turn, status: "cancelled", retryable: true });
      this._renderTyping();
    }

    _onConversationUpdated(event) {
      const wasWaiting = this.status === "waiting_on_staff";
      if ((event.resolution || 0) !== this.resolution) {
        // A new resolution: not rated yet; a prompt still shown for the last one goes.
        this._removeRating();
        this.resolution = event.resolution || 0;
        this.rated = false;
      }
      this._setConversationState(event.status, event.ai_paused);
      if (event.status === "waiting_on_staff" && !wasWaiting) this._noticed(this.t("handoffBanner"));
      this._renderRating();
    }

    _onTyping(event) {
      if (event.role !== "staff") return;
      clearTimeout(this._staffTypingTimer);
      this.staffTyping = event.active ? event.name || this.t("staffFallback") : "";
      if (this.staffTyping) {
        this._staffTypingTimer = setTimeout(() => {
          this.staffTyping = "";
          this._renderTyping();
        }, STAFF_TYPING_MS);
      }
      this._renderTyping();
    }

    /* A staff member has seen the conversation up to `seq`. */
    _onRead(event) {
      this._markRead(event.seq || 0);
    }

    _onAck(event) {
      if (event.frame === "retry") {
        this._removeProblem(event.turn);
        this.activeTurns.add(event.new_turn);
        this._renderTyping();
      } else if (event.frame === "handoff") {
        this._announce(this.t("handoffRequested"));
      } else if (event.frame === "rating") {
        this._ratingSent();
      }
    }

    _onError(event) {
      if (event.frame === "message" && event.client_id && this.pending.has(event.client_id)) {
        this._markUnsent(this.pending.get(event.client_id), this._reason(event.code));
      } else if (event.frame === "retry" && this.problems.has(event.turn)) {
        const box = this.problems.get(event.turn);
        box.querySelector("button")?.remove();
        box.appendChild(el("p", { text: this.t("notSent", { reason: this._reason(event.code) }) }));
      } else if (event.frame === "handoff") {
        this.$handoff.removeAttribute("aria-disabled");
      } else if (event.frame === "rating") {
        this._ratingRefused(event.code);
      } else {
        console.warn("support-chat:", event.code, event.message);
      }
    }
  };
