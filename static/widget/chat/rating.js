/* Customer satisfaction: once a conversation is resolved, the widget asks once for a
 * 1-5 rating and an optional comment (the `rating` frame). Sent or skipped is kept on
 * this device per resolution (`conversation.updated` and `ready` carry `resolution`;
 * `ready` also says whether it is `rated`), so a resolution is asked about once and a
 * conversation reopened and resolved again is asked again. */

import { el } from "./dom.js";
import { store } from "./store.js";

const SCORES = [1, 2, 3, 4, 5];
const MAX_COMMENT_CHARS = 1000;

export const RatingMixin = (Base) =>
  class extends Base {
    get _ratingKey() {
      const conversation = this.session && this.session.conversation;
      return conversation ? this.storageKey + ":rated:" + conversation + ":" + this.resolution : "";
    }

    /* Show the prompt if the conversation is resolved and this resolution was neither
       rated nor skipped; drop it if the conversation is open again. */
    _renderRating() {
      if (this.status !== "resolved") {
        this._removeRating();
        return;
      }
      const key = this._ratingKey;
      if (!key || this.rated || store.get(key) || this.$rating || !this.socketReady) return;
      this._buildRating(key);
    }

    _buildRating(key) {
      const question = el("p", { className: "rate-q", id: "rate-q", text: this.t("ratingQuestion") });
      const scores = el("div", { className: "scores", role: "group", "aria-labelledby": "rate-q" });
      const buttons = SCORES.map((score) => {
        const button = el("button", {
          type: "button", className: "score", "aria-pressed": "false",
          "aria-label": this.t("ratingScore", { score }), title: this.t("ratingScore", { score }), text: "★",
        });
        button.dataset.score = String(score);
        button.addEventListener("click", () => {
          this._ratingScore = score;
          for (const other of buttons) {
            other.setAttribute("aria-pressed", String(other === button));
            other.classList.toggle("on", Number(other.dataset.score) <= score);
          }
          send.removeAttribute("aria-disabled");
        });
        return button;
      });
      scores.append(...buttons);
      const comment = el("textarea", { id: "rate-comment", rows: "2", maxlength: String(MAX_COMMENT_CHARS) });
      const label = el("label", { for: "rate-comment", text: this.t("ratingComment") });
      const send = el("button", { type: "button", className: "rate-send", "aria-disabled": "true", text: this.t("ratingSend") });
      const skip = el("button", { type: "button", className: "link-btn", text: this.t("ratingSkip") });
      const note = el("p", { className: "rate-note", role: "status" });
      send.addEventListener("click", () => {
        if (send.getAttribute("aria-disabled") === "true" || !this._ratingScore) return;
        if (this._sendFrame({ type: "rating", score: this._ratingScore, comment: comment.value })) {
          send.setAttribute("aria-disabled", "true");
          note.textContent = this.t("sending");
        }
      });
      skip.addEventListener("click", () => {
        store.set(key, "skipped");
        this._removeRating();
      });
      this._ratingScore = 0;
      this._ratingParts = { send, note, key };
      this.$rating = el("li", { className: "rating" }, [
        question, scores, label, comment, el("div", { className: "rate-actions" }, [send, skip]), note,
      ]);
      this._append(this.$rating);
      this._noticed(this.t("ratingQuestion"));
    }

    _removeRating() {
      if (!this.$rating) return;
      if (this.$rating.contains(this.shadowRoot.activeElement)) this.$input.focus();
      this.$rating.remove();
      this.$rating = null;
    }

    /* The server stored the rating: thank the customer instead of asking. */
    _ratingSent() {
      if (!this.$rating) return;
      store.set(this._ratingParts.key, "sent");
      this.rated = true;
      const focused = this.$rating.contains(this.shadowRoot.activeElement);
      const thanks = el("li", { className: "rating done", tabindex: "-1" }, [el("p", { text: this.t("ratingThanks") })]);
      this.$rating.replaceWith(thanks);
      this.$rating = null;
      if (focused) thanks.focus();
      this._announce(this.t("ratingThanks"));
    }

    _ratingRefused(code) {
      if (!this.$rating) return;
      if (code === "already_rated" || code === "not_resolved") {
        // Rated from another device, or reopened meanwhile: nothing to ask here.
        if (code === "already_rated") store.set(this._ratingParts.key, "sent");
        this._removeRating();
        return;
      }
      this._ratingParts.send.removeAttribute("aria-disabled");
      this._ratingParts.note.textContent = this.t("notSent", { reason: this._reason(code) });
    }
  };
