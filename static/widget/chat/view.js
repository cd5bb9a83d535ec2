/* Drawing the widget: its shadow DOM (launcher, panel, transcript, form), the texts in
 * the current language, and the small view helpers every other part uses (the status
 * line, the launcher's icon and unread badge, who answers, times, the character count,
 * announcements for screen readers, scrolling, appending a line in seq order). */

import { el, icon, ICON_CHAT, ICON_CLOSE, ICON_SEND } from "./dom.js";
import { CSS } from "./styles.js";

export const ViewMixin = (Base) =>
  class extends Base {
    // --- building the DOM ---------------------------------------------------------------

    _build() {
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      const on = (node, type, fn) => node.addEventListener(type, fn);

      this.$launcher = el("button", { className: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "panel" }, [icon(ICON_CHAT)]);
      this.$launcher.dataset.icon = "chat";
      this.$badge = el("span", { className: "badge", hidden: "", "aria-hidden": "true" });
      this.$launcher.appendChild(this.$badge);
      on(this.$launcher, "click", () => (this.isOpen ? this.close() : this.open()));

      this.$title = el("h2", { id: "title" });
      this.$model = el("p", { className: "model" });
      this.$close = el("button", { className: "icon-btn", type: "button" }, [icon(ICON_CLOSE)]);
      on(this.$close, "click", () => this.close());
      this.$handoff = el("button", { className: "tool-btn", type: "button" });
      on(this.$handoff, "click", () => this.requestHandoff());
      this.$new = el("button", { className: "tool-btn", type: "button" });
      on(this.$new, "click", () => this.newConversation());
      const header = el("header", {}, [
        el("div", { className: "head-row" }, [el("div", { className: "titles" }, [this.$title, this.$model]), this.$close]),
        el("div", { className: "tools" }, [this.$handoff, this.$new]),
      ]);

      this.$status = el("div", { className: "status", role: "status" });
      this.$banner = el("div", { className: "banner", role: "status" });
      this.$log = el("ol", { className: "log", "aria-labelledby": "title", tabindex: "0" });
      this.$greeting = el("li", { className: "greeting" });
      this.$log.appendChild(this.$greeting);
      this.$typing = el("div", { className: "typing", "aria-hidden": "true" });
      this.$live = el("div", { className: "sr", "aria-live": "polite", "aria-relevant": "additions" });

      this.$input = el("textarea", { rows: "1", id: "input", autocomplete: "off", "aria-describedby": "count" });
      this.$inputLabel = el("label", { className: "sr", for: "input" });
      this.$send = el("button", { className: "send", type: "submit" }, [icon(ICON_SEND, true)]);
      this.$count = el("p", { className: "count", id: "count" }); // read with the box (aria-describedby), not on every key
      this.$form = el("form", {}, [this.$inputLabel, this.$input, this.$send, this.$count]);
      on(this.$form, "submit", (e) => {
        e.preventDefault();
        this._submit();
      });
      on(this.$input, "keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          this._submit();
        }
      });
      on(this.$input, "input", () => {
        this._autosize();
        this._renderCount();
        this._sendTyping();
      });

      this.$panel = el("section", { className: "panel", id: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "title", hidden: "" }, [
        header, this.$status, this.$banner, this.$log, this.$typing, this.$form,
      ]);
      on(this.$panel, "keydown", (e) => {
        if (e.key === "Escape") {
          e.stopPropagation();
          this.close();
        }
      });
      this.$probe = el("span", { className: "sr", "aria-hidden": "true" }); // reads the accent's computed colour
      root.replaceChildren(this.$panel, this.$launcher, this.$live, this.$probe);
      // A constructed stylesheet is not inline CSS, so a host page's strict
      // Content-Security-Policy does not block it; older browsers get a <style>.
      if ("adoptedStyleSheets" in root && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } else {
        root.prepend(el("style", { text: CSS }));
      }
    }

    _renderTexts() {
      if (!this.$title) return;
      const agent = this.session && this.session.agent;
      this.$title.textContent = this.getAttribute("heading") || (agent && agent.name) || this.t("title");
      for (const node of this.$log.querySelectorAll(".msg.assistant")) this._identify(node, "assistant");
      this.$model.textContent = this._provenance();
      this.$close.setAttribute("aria-label", this.t("close"));
      this.$handoff.textContent = this.t("talkToPerson");
      this.$new.textContent = this.t("newConversation");
      this.$greeting.textContent = this.t("greeting");
      this.$input.setAttribute("placeholder", this.t("placeholder"));
      this.$inputLabel.textContent = this.t("inputLabel");
      this.$send.setAttribute("aria-label", this.t("send"));
      this._renderCount();
      this._renderTimes();
      this._renderBadge();
      this._renderBanner();
      this._renderTyping();
    }

    // --- view helpers ----------------------------------------------------------------------

    /* Who wrote a message, beside it: the name above the bubble and the avatar (the
       image, or the name's first letter when there is none or it does not load). The
       assistant's come from the session (`agent`), a staff member's from the item. */
    _identify(node, kind, staff) {
      const agent = (this.session && this.session.agent) || {};
      const name = kind === "staff" ? staff.name : agent.name || this.t("assistant");
      const label = kind === "staff" ? (name ? this.t("staffName", { name }) : this.t("staffFallback")) : name;
      const avatarUrl = kind === "staff" ? staff.avatarUrl : agent.avatar_url;
      let who = node.querySelector(":scope > .who");
      if (!who) who = node.insertBefore(el("span", { className: "who" }), node.firstChild);
      if (who.textContent !== label) who.textContent = label;
      const key = (avatarUrl || "") + "|" + name;
      const avatar = node.querySelector(":scope > .avatar");
      if (avatar && avatar.dataset.key === key) return label;
      const fresh = this._avatar(name || label, avatarUrl);
      fresh.dataset.key = key;
      if (avatar) avatar.replaceWith(fresh);
      else node.insertBefore(fresh, node.firstChild);
      return label;
    }

    _avatar(name, url) {
      const initial = (Array.from(String(name).trim())[0] || "?").toLocaleUpperCase();
      const avatar = el("span", { className: "avatar", "aria-hidden": "true", text: initial });
      let parsed;
      try {
        parsed = url ? new URL(url, this.server) : null;
      } catch (e) {
        parsed = null;
      }
      if (parsed && (parsed.protocol === "https:" || parsed.protocol === "http:")) {
        const img = el("img", { alt: "", src: parsed.href, referrerpolicy: "no-referrer", decoding: "async" });
        // A broken or blocked image (the page's CSP img-src) falls back to the letter.
        img.addEventListener("error", () => avatar.replaceChildren(document.createTextNode(initial)));
        avatar.replaceChildren(img);
      }
      return avatar;
    }

    /* An answer's citations: links to the platform's public help articles (the server
       sends only published ones; internal documents never reach the page). */
    _sources(sources) {
      const links = [];
      for (const source of Array.isArray(sources) ? sources : []) {
        let url;
        try {
          url = new URL(String(source.url || ""), this.server);
        } catch (e) {
          url = null;
        }
        if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || !source.title) continue;
        links.push(el("li", {}, [el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", text: String(source.title) })]));
      }
      if (!links.length) return null;
      return el("div", { className: "sources" }, [el("span", { text: this.t("sources") }), el("ul", {}, links)]);
    }

    _clearConversation() {
      this._closeSocket();
      const greeting = this.$greeting;
      this.$log.replaceChildren(greeting);
      const keepOpen = this.isOpen;
      this._resetState();
      this.isOpen = keepOpen;
      this._renderTexts();
    }

    /* Who answers, said once in the header, as the site chose (the server applies the
       choice: a hidden model's name never reaches the page). The offline model always
       says what it is. */
    _provenance() {
      const model = this.session && this.session.model;
      if (!model) return "";
      const mode = model.provenance || (model.offline ? "offline" : "model");
      if (mode === "offline" || (mode === "model" && model.label)) return this.t("subtitleModel", { model: model.label });
      if (mode === "assistant") return this.t("subtitleAssistant");
      return "";
    }

    /* "1,234 / 8,000" once the text nears the limit (the last fifth). */
    _renderCount() {
      if (!this.$count) return;
      const max = this.maxChars;
      this.$input.maxLength = max;
      const used = this.$input.value.length;
      const near = used >= max * 0.8;
      const fmt = (n) => n.toLocaleString(this.strings.locale || undefined);
      const text = near ? this.t("charCount", { used: fmt(used), max: fmt(max) }) : "";
      if (this.$count.textContent !== text) this.$count.textContent = text;
      this.$count.classList.toggle("at-limit", used >= max);
    }

    /* A message's time: relative ("5 min ago"), with the exact time in a tooltip shown on
       hover and keyboard focus, and in its accessible name. */
    _time(iso) {
      const node = el("time", { tabindex: "0" });
      if (!iso) return node;
      node.setAttribute("datetime", iso);
      this._renderTime(node, Date.now());
      return node;
    }

    _renderTime(node, now) {
      const when = new Date(node.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) return;
      const locale = this.strings.locale || undefined;
      const exact = when.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
      const seconds = Math.round((when.getTime() - now) / 1000);
      let relative;
      if (Math.abs(seconds) < 45) relative = this.t("justNow");
      else {
        const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" });
        const minutes = Math.round(seconds / 60);
        const hours = Math.round(seconds / 3600);
        if (Math.abs(minutes) < 60) relative = rtf.format(minutes, "minute");
        else if (Math.abs(hours) < 24) relative = rtf.format(hours, "hour");
        else relative = when.toLocaleDateString(locale, { month: "short", day: "numeric" });
      }
      if (node.textContent !== relative) node.textContent = relative;
      node.dataset.exact = exact;
      node.title = exact;
      node.setAttribute("aria-label", relative + ", " + exact);
    }

    _renderTimes() {
      if (!this.$log) return;
      const now = Date.now();
      for (const node of this.$log.querySelectorAll("time[datetime]")) this._renderTime(node, now);
    }

    _renderBadge() {
      const want = this.isOpen ? "close" : "chat";
      if (this.$launcher.dataset.icon !== want) {
        // A close icon on the launcher while the panel is open.
        this.$launcher.querySelector("svg").replaceWith(icon(want === "close" ? ICON_CLOSE : ICON_CHAT));
        this.$launcher.dataset.icon = want;
      }
      let label = this.isOpen ? this.t("launcherClose") : this.t("launcherOpen");
      if (this.unread > 0 && !this.isOpen) {
        this.$badge.hidden = false;
        this.$badge.textContent = this.unread > 9 ? "9+" : String(this.unread);
        label += ", " + this.t("unread", { count: this.unread });
      } else {
        this.$badge.hidden = true;
      }
      this.$launcher.setAttribute("aria-label", label);
    }

    /* Something new arrived: count it as unread while closed, and announce it. */
    _noticed(announcement) {
      if (this.catchingUp) return;
      if (!this.isOpen) {
        this.unread += 1;
        this._renderBadge();
      }
      this._announce(announcement);
    }

    _announce(text) {
      this.$live.appendChild(el("p", { text }));
      while (this.$live.childNodes.length > 5) this.$live.firstChild.remove();
    }

    _setStatus(text) {
      this.$status.textContent = text || "";
    }

    /* Add a line to the transcript. Messages still being sent stay at the bottom until
       stored, so the transcript is always in the server's seq order. */
    _append(node) {
      this._followLog();
      const firstPending = [...this.$log.querySelectorAll(".msg.pending, .msg.unsent")].find((n) => n !== node);
      if (firstPending) this.$log.insertBefore(node, firstPending);
      else this.$log.appendChild(node);
      return node;
    }

    /* Keep the newest line in view unless the visitor scrolled up to read. */
    _followLog() {
      const log = this.$log;
      if (this.catchingUp || log.scrollHeight - log.scrollTop - log.clientHeight < 120) this._scrollToEnd();
    }

    _scrollToEnd() {
      const log = this.$log;
      requestAnimationFrame(() => {
        log.scrollTop = log.scrollHeight;
      });
    }

    _autosize() {
      this.$input.style.height = "auto";
      this.$input.style.height = Math.min(this.$input.scrollHeight + 2, 120) + "px";
    }
  };
