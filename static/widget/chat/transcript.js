/* The transcript: drawing stored items (the visitor's messages with their delivered /
 * read state, answers, staff replies, each with its time; tool rows) and a turn's live state (its streamed draft, its commentary, a failed
 * turn's problem box with "Try again", the typing line, the banner). */

import { el, fill, formatted, parseArgs } from "./dom.js";

export const TranscriptMixin = (Base) =>
  class extends Base {
    // --- drawing stored items --------------------------------------------------------------

    _storedUser(message) {
      const item = message.client_id && this.pending.get(message.client_id);
      let node;
      if (item) {
        this.pending.delete(message.client_id);
        item.el.classList.remove("pending", "unsent");
        item.el.querySelector(".note")?.remove();
        node = this._append(item.el); // moves it into seq order, above other unsent ones
      } else {
        node = this._append(this._bubble("user", message.text));
      }
      node.dataset.seq = String(message.seq);
      const meta = node.querySelector(".meta");
      meta.prepend(this._time(message.created_at));
      meta.appendChild(el("span", { className: "receipt" }));
      this._renderReceipts();
      return node;
    }

    /* "Delivered" on the visitor's stored messages, "Read" up to `readSeq`. */
    _renderReceipts() {
      for (const node of this.$log.querySelectorAll(".msg.user[data-seq]")) {
        const read = Number(node.dataset.seq) <= this.readSeq;
        const receipt = node.querySelector(".receipt");
        const text = this.t(read ? "read" : "delivered");
        if (receipt && receipt.textContent !== text) {
          receipt.textContent = text;
          receipt.classList.toggle("is-read", read);
        }
      }
    }

    _markRead(seq) {
      if (seq <= this.readSeq) return;
      this.readSeq = seq;
      this._renderReceipts();
    }

    _storedAssistant(message, modelLabel) {
      // Answers are stored when their turn completes: even if that event was lost,
      // the turn is over.
      this.activeTurns.delete(message.turn);
      this._renderTyping();
      const view = this.turns.get(message.turn);
      const draft = view && view.segments.find((s) => !s.final && s.text && !s.commentary);
      let node;
      if (draft) {
        draft.final = true;
        if (view.current === draft) view.current = null;
        draft.bubble.replaceChildren(formatted(message.text));
        draft.node.classList.remove("streaming");
        draft.node.removeAttribute("aria-busy");
        node = draft.node;
      } else {
        node = this._append(this._bubble("assistant", message.text));
      }
      // Provenance is said once, in the header. An answer names its model only when it
      // differs from the header's (the offline model answering a real provider's chat).
      const header = this.session && this.session.model;
      if (modelLabel && header && modelLabel !== header.label) {
        node.appendChild(el("span", { className: "caption", text: this.t("answeredBy", { model: modelLabel }) }));
      }
      const sources = this._sources(message.metadata && message.metadata.sources);
      if (sources && !node.querySelector(".sources")) node.querySelector(".bubble").after(sources);
      const meta = node.querySelector(".meta") || node.appendChild(el("span", { className: "meta" }));
      if (!meta.firstChild) meta.appendChild(this._time(message.created_at));
      const who = this._identify(node, "assistant");
      this._followLog();
      this._noticed(who + ": " + message.text);
      return node;
    }

    _storedStaff(message) {
      const metadata = message.metadata || {};
      const node = this._append(this._bubble("staff", message.text));
      const who = this._identify(node, "staff", { name: metadata.author_name || "", avatarUrl: metadata.author_avatar_url || "" });
      node.querySelector(".meta").appendChild(this._time(message.created_at));
      this.staffTyping = "";
      this._renderTyping();
      this._noticed(who + ": " + message.text);
      return node;
    }

    _storedCall(message) {
      const args = parseArgs(message.arguments);
      let row = this.toolRows.get(message.call_id);
      if (!row) {
        row = this._append(this._toolRow(message.tool_name, "running", ""));
        this.toolRows.set(message.call_id, row);
      }
      row.dataset.stored = "1";
      row.dataset.args = JSON.stringify(args);
      row.dataset.activity = message.activity || row.dataset.activity || "";
      const state = row.classList.contains("failed") ? "failed" : row.classList.contains("ok") ? "done" : "running";
      row.querySelector(".label").textContent = this._toolText(message.tool_name, args, state, row.dataset.activity);
      return row;
    }

    _storedOutput(message) {
      const row = this.toolRows.get(message.call_id);
      if (!row) return;
      const args = parseArgs(row.dataset.args);
      const state = message.ok === false ? "failed" : "done";
      row.className = "tool " + (state === "done" ? "ok" : "failed");
      row.querySelector(".label").textContent = this._toolText(message.tool_name, args, state, row.dataset.activity);
    }

    _bubble(kind, text) {
      const node = el("li", { className: "msg " + kind });
      if (kind === "user") node.appendChild(el("span", { className: "sr", text: this.t("you") + ": " }));
      const bubble = el("div", { className: "bubble" });
      bubble.appendChild(formatted(text));
      node.appendChild(bubble);
      node.appendChild(el("span", { className: "meta" }));
      return node;
    }

    _toolRow(name, state, text) {
      const row = el("li", { className: "tool " + (state === "running" ? "running" : state) }, [
        el("span", { className: "dot", "aria-hidden": "true" }),
        el("span", { className: "label", text }),
      ]);
      row.dataset.name = name || "";
      return row;
    }

    _toolText(name, args, state, activity) {
      const custom = this.strings.tools && this.strings.tools[name];
      const filled = custom && custom[state] ? fill(custom[state], args) : null;
      if (filled) return filled;
      if (state === "running") return activity || this.t("toolRunning");
      return this.t(state === "done" ? "toolDone" : "toolFailed", { tool: String(name || "").replace(/_/g, " ") });
    }

    _systemLine(text) {
      this._append(el("li", { className: "greeting", text }));
      this._announce(text);
    }

    // --- turns: drafts, problems, the typing line -----------------------------------------

    _turn(id) {
      if (!this.turns.has(id)) this.turns.set(id, { live: false, segments: [], current: null, calls: [] });
      return this.turns.get(id);
    }

    /* Remove what was drawn for a turn but never stored (a failed turn's partial text
       is not an answer). */
    _discardDraft(id, { tools = false } = {}) {
      const view = this.turns.get(id);
      if (!view) return;
      for (const segment of view.segments) if (!segment.final) segment.node.remove();
      view.segments = view.segments.filter((s) => s.final);
      view.current = null;
      view.commentary = null;
      if (tools) {
        for (const callId of view.calls) {
          const row = this.toolRows.get(callId);
          if (row && !row.dataset.stored) {
            row.remove();
            this.toolRows.delete(callId);
          }
        }
      }
    }

    /* The socket dropped: deltas sent meanwhile are lost, so half-drawn answers go;
       the stored answer arrives with the catch-up. */
    _dropLiveTurns() {
      for (const [id, view] of this.turns) {
        this._discardDraft(id, { tools: true });
        view.live = false;
      }
    }

    _showProblem(turn) {
      if (this.problems.has(turn.id)) return;
      if (turn.status === "cancelled" && this.aiPaused) return; // the handoff banner says it
      const text = turn.status === "failed"
        ? this.t("turnFailed", { reason: this._reason(turn.error_code) })
        : this.t("turnStopped");
      const box = el("li", { className: "problem" }, [el("p", { text })]);
      if (turn.retryable !== false && !this.aiPaused) {
        const button = el("button", { type: "button", text: this.t("retry") });
        button.addEventListener("click", () => {
          if (button.getAttribute("aria-disabled") === "true") return;
          if (this._sendFrame({ type: "retry", turn: turn.id })) button.setAttribute("aria-disabled", "true");
        });
        box.appendChild(button);
      }
      box.dataset.status = turn.status;
      this.problems.set(turn.id, box);
      const after = turn.user_message_seq && this.items.get(turn.user_message_seq);
      if (after && after.parentNode === this.$log) after.after(box);
      else this._append(box);
      this._noticed(text);
    }

    _removeProblem(id) {
      const box = this.problems.get(id);
      if (box && box.contains(this.shadowRoot.activeElement)) this.$input.focus();
      if (box) box.remove();
      this.problems.delete(id);
    }

    _renderTyping() {
      if (!this.$typing) return;
      let text = "";
      if (this.staffTyping) text = this.t("staffTyping", { name: this.staffTyping });
      else if (this.activeTurns.size && !this.aiPaused) {
        const streaming = [...this.turns.values()].some((v) => v.current && v.current.text);
        if (!streaming) text = this.t("assistantTyping");
      }
      this.$typing.textContent = text;
    }

    _setConversationState(status, aiPaused) {
      this.status = status;
      this.aiPaused = aiPaused;
      this.$handoff.removeAttribute("aria-disabled");
      if (aiPaused) {
        // A person took over: answers stopped for that reason are not failures.
        for (const [id, box] of this.problems) if (box.dataset.status === "cancelled") this._removeProblem(id);
      }
      this._renderBanner();
      this._renderTyping();
    }

    _renderBanner() {
      let text = "";
      // Resolved says so even when a person had taken over (the AI stays paused).
      if (this.status === "waiting_on_staff") text = this.t("handoffBanner");
      else if (this.status === "resolved") text = this.t("resolvedBanner");
      else if (this.aiPaused) text = this.t("takenOverBanner");
      this.$banner.textContent = text;
      const hide = this.aiPaused || this.status === "waiting_on_staff";
      // A control that disappears must not take the keyboard focus with it.
      if (hide && this.shadowRoot.activeElement === this.$handoff) this.$input.focus();
      this.$handoff.hidden = hide;
    }

    _reason(code) {
      const reasons = this.strings.errors || {};
      return reasons[code] || reasons.default || code;
    }
  };
