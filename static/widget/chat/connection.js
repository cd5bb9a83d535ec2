/* The session and the socket: `POST /widget/session` (resume at once when localStorage
 * holds a token; start only when the visitor first sends something or asks for a
 * person, so a page view creates nothing), the websocket with `?token=&after=<last seq>`, reconnecting with
 * backoff (at once after 4503; afresh after 4404), and the frames the visitor sends
 * (messages, typing hints). docs/widget.md is the protocol. */

import { el, newId } from "./dom.js";
import { store } from "./store.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const TYPING_EVERY_MS = 3000;

export const ConnectionMixin = (Base) =>
  class extends Base {
    // --- session and socket -------------------------------------------------------------

    /* Resume the saved conversation at once; with none, wait for the visitor's first
       message (`_ensureConversation`) unless one is already waiting to be sent. */
    _start(notice) {
      clearTimeout(this._timer);
      const saved = store.get(this.storageKey);
      if (saved && saved.token) return this._begin(saved.token, notice);
      if (notice) this._systemLine(notice);
      if (this.pending.size || this._wantHandoff) return this._begin(null);
      this._setStatus("");
      return null;
    }

    /* The visitor wrote or asked for a person: start their conversation if need be. */
    _ensureConversation() {
      if (!this.session && !this._starting) this._begin(null);
    }

    async _begin(token, notice) {
      clearTimeout(this._timer);
      this._starting = true;
      this._setStatus(this.t("connecting"));
      let session;
      try {
        session = await this._fetchSession(token);
      } catch (err) {
        this._starting = false;
        if (err.status === 404 && token) {
          store.remove(this.storageKey);
          this._start(this.t("conversationGone"));
        } else {
          this._setStatus(navigator.onLine === false ? this.t("offline") : this.t("reconnecting"));
          this._later(() => this._begin(token, notice));
        }
        return;
      }
      this._starting = false;
      this.session = session;
      store.set(this.storageKey, { conversation: session.conversation, token: session.token });
      this.status = session.status;
      this.aiPaused = session.ai_paused;
      this.readSeq = Math.max(this.readSeq, session.read_seq || 0);
      if (session.limits) this.maxChars = session.limits.max_message_chars;
      this._renderTexts();
      if (notice) this._systemLine(notice);
      this._connect();
    }

    async _fetchSession(token) {
      const body = token ? { token } : { page: location.origin + location.pathname };
      const response = await fetch(this.server + "/widget/session", {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const error = new Error("session request failed: " + response.status);
        error.status = response.status;
        throw error;
      }
      return response.json();
    }

    _connect() {
      if (!this.session || this._ws) return;
      const base = this.server.replace(/^http/, "ws");
      const query = "?token=" + encodeURIComponent(this.session.token) + "&after=" + this.lastSeq;
      const ws = new WebSocket(base + this.session.websocket_path + query);
      this._ws = ws;
      this.socketReady = false;
      ws.addEventListener("message", (e) => {
        if (ws === this._ws) this._dispatch(e.data);
      });
      ws.addEventListener("close", (e) => {
        if (ws === this._ws) this._onSocketClose(e);
      });
    }

    _onSocketClose(event) {
      this._ws = null;
      this.socketReady = false;
      this._dropLiveTurns();
      if (event.code === 4404) {
        // The server no longer knows this conversation (or the token): start afresh.
        store.remove(this.storageKey);
        this._clearConversation();
        this._start(this.t("conversationGone"));
        return;
      }
      // 4503: the server's live delivery broke (its broker restarted) and it will work
      // again at once; reconnect on the first backoff step and catch up by seq.
      if (event.code === 4503) this._attempt = 0;
      this._setStatus(navigator.onLine === false ? this.t("offline") : this.t("reconnecting"));
      this._later(() => this._connect());
    }

    /* Run `fn` after the next backoff delay (with jitter). */
    _later(fn) {
      clearTimeout(this._timer);
      const base = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
      this._attempt += 1;
      this._timer = setTimeout(fn, base * (0.8 + Math.random() * 0.4));
    }

    _reconnectNow() {
      if (this._ws) return;
      clearTimeout(this._timer);
      this._attempt = 0;
      if (this.session) this._connect();
      else if (!this._starting) this._start();
    }

    _closeSocket() {
      clearTimeout(this._timer);
      const ws = this._ws;
      this._ws = null;
      this.socketReady = false;
      if (ws) ws.close(1000);
    }

    _sendFrame(frame) {
      if (!this._ws || !this.socketReady) return false;
      this._ws.send(JSON.stringify(frame));
      return true;
    }

    // --- sending -------------------------------------------------------------------------

    _submit() {
      const text = this.$input.value;
      if (!text.trim()) return;
      const item = { id: newId(), text, el: this._bubble("user", text), unsent: false };
      item.el.classList.add("pending");
      item.el.querySelector(".meta").appendChild(el("span", { className: "note", text: this.t("sending") }));
      this.pending.set(item.id, item);
      this.$log.appendChild(item.el);
      this._scrollToEnd();
      this.$input.value = "";
      this._autosize();
      this._renderCount();
      this._lastTypingSent = 0;
      // Unsent messages wait for the connection and are sent (idempotently) on reconnect;
      // the first one starts the conversation.
      if (!this.session) this._ensureConversation();
      else this._sendFrame({ type: "message", text, client_id: item.id });
    }

    _markUnsent(item, reason) {
      item.unsent = true;
      item.el.classList.remove("pending");
      item.el.classList.add("unsent");
      item.el.querySelector(".note")?.remove();
      const again = el("button", { className: "link-btn", type: "button", text: this.t("retrySend") });
      again.addEventListener("click", () => {
        item.unsent = false;
        item.el.classList.replace("unsent", "pending");
        note.replaceChildren(document.createTextNode(this.t("sending")));
        this._sendFrame({ type: "message", text: item.text, client_id: item.id });
      });
      const note = el("span", { className: "note", text: this.t("notSent", { reason }) + " " }, [again]);
      item.el.querySelector(".meta").appendChild(note);
    }

    _sendTyping() {
      const now = Date.now();
      if (now - this._lastTypingSent < TYPING_EVERY_MS || !this.$input.value.trim()) return;
      if (this._sendFrame({ type: "typing" })) this._lastTypingSent = now;
    }
  };
