/* The <support-chat> element: its lifecycle, state, attributes, texts and public API
 * (open, close, requestHandoff, newConversation). The rest of its behaviour comes from
 * the mixins it is built from, one module each: view.js (drawing), connection.js
 * (session and socket), events.js (server events), transcript.js (stored items and
 * turns). */

import { ConnectionMixin } from "./connection.js";
import { isObject, merge, fill } from "./dom.js";
import { EventsMixin } from "./events.js";
import { RatingMixin } from "./rating.js";
import { store, tabStore } from "./store.js";
import { STRINGS } from "./strings.js";
import { TranscriptMixin } from "./transcript.js";
import { ViewMixin } from "./view.js";

export const TAG = "support-chat";
const STORAGE_PREFIX = "support-chat:v1:";
const DEFAULT_MAX_CHARS = 8000; // the platform's default, until a session says otherwise
const CLOCK_MS = 30000; // how often relative times ("5 min ago") are redrawn
// The modules are served beside widget.js, so their origin is the script's: the
// platform the widget talks to unless the `server` attribute says otherwise.
const MODULE_ORIGIN = new URL(import.meta.url).origin;
const WHITE = [255, 255, 255];
const INK = [17, 24, 39]; // #111827: dark text on a light accent
const DARK_BG = [17, 24, 39]; // the dark theme's background

function parseRgb(value) {
  const match = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(value || "");
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null;
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/* `rgb` moved toward `target` (black or white) until it reads on `bg` at 4.5:1. */
function readableOn(rgb, bg, target) {
  let colour = rgb;
  for (let step = 1; step <= 20 && contrast(colour, bg) < 4.5; step += 1) {
    colour = rgb.map((c, i) => Math.round(c + ((target[i] - c) * step) / 20));
  }
  return colour;
}

const cssRgb = (rgb) => "rgb(" + rgb.join(",") + ")";

export class SupportChat extends EventsMixin(RatingMixin(TranscriptMixin(ConnectionMixin(ViewMixin(HTMLElement))))) {
  /* The built-in text tables by language; a page may add one before setting `lang`. */
  static get strings() {
    return STRINGS;
  }

  static get observedAttributes() {
    return ["accent", "heading", "strings", "lang", "theme", "dir"];
  }

  connectedCallback() {
    if (this._built) return;
    this._built = true;
    this._resetState();
    this._build();
    this._applyAttributes();
    // Open if the page says so, or if it was open on the previous page of this site (tab).
    if (this.hasAttribute("open") || tabStore.get(this.openKey)) this.open({ focus: false, remember: false });
    this._clock = setInterval(() => this._renderTimes(), CLOCK_MS);
    this._onOnline = () => {
      this._setStatus("");
      this._reconnectNow();
    };
    this._onOffline = () => this._setStatus(this.t("offline"));
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    // The page's own direction and language may change (a site switching language in place).
    this._pageObserver = new MutationObserver(() => this._applyAttributes());
    this._pageObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["dir", "lang"] });
    this._start();
  }

  disconnectedCallback() {
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    this._pageObserver.disconnect();
    clearInterval(this._clock);
    this._closeSocket();
    this.shadowRoot.replaceChildren();
    this._built = false;
  }

  attributeChangedCallback() {
    if (this._built) this._applyAttributes();
  }

  get server() {
    return (this.getAttribute("server") || MODULE_ORIGIN).replace(/\/+$/, "");
  }

  get storageKey() {
    return STORAGE_PREFIX + this.server;
  }

  /* sessionStorage key: whether the panel is open, kept across this tab's pages. */
  get openKey() {
    return STORAGE_PREFIX + "open:" + this.server;
  }

  _resetState() {
    this.session = null;
    this.lastSeq = 0; // highest seq received: the reconnect asks for what follows
    this.readSeq = 0; // the visitor's messages up to this seq have been read
    this.maxChars = DEFAULT_MAX_CHARS;
    this._starting = false; // a session request is in flight
    this._wantHandoff = false; // asked for a person before the conversation existed
    this.items = new Map(); // seq -> element (or null for items not drawn)
    this.pending = new Map(); // client_id -> {id, text, el}: sent, not yet stored
    this.turns = new Map(); // turn id -> {live, segments, current, calls}
    this.toolRows = new Map(); // call_id -> element
    this.problems = new Map(); // turn id -> element
    this.activeTurns = new Set();
    this.readyTurns = [];
    this.status = "open";
    this.resolution = 0; // how many times the conversation has been resolved
    this.rated = false; // the server says this resolution is rated
    this.$rating = null; // the rating prompt, while it is shown
    this.aiPaused = false;
    this.unread = 0;
    this.catchingUp = true;
    this.socketReady = false;
    this.staffTyping = "";
    this._attempt = 0;
    this._lastTypingSent = 0;
  }

  t(key, values) {
    const value = key.split(".").reduce((obj, part) => (obj ? obj[part] : undefined), this.strings);
    if (value === undefined || value === null) return key;
    if (!values) return value;
    return fill(value, values) || String(value).replace(/\s*\{\w+\}/g, "");
  }

  _applyAttributes() {
    const wanted = this.getAttribute("lang") || document.documentElement.lang || navigator.language || "en";
    const base = STRINGS[wanted.slice(0, 2).toLowerCase()] || STRINGS.en;
    let custom = {};
    const raw = this.getAttribute("strings");
    if (raw) {
      try {
        custom = JSON.parse(raw);
      } catch (e) {
        console.warn("support-chat: the strings attribute is not valid JSON");
      }
    }
    this.strings = merge(merge(STRINGS.en, base), isObject(custom) ? custom : {});
    const accent = this.getAttribute("accent");
    if (accent) this.style.setProperty("--support-chat-accent", accent);
    else this.style.removeProperty("--support-chat-accent");
    this._applyDirection();
    this._applyAccentContrast();
    this._renderTexts();
  }

  /* "rtl" or "ltr": the `dir` attribute, else (absent or "auto") the nearest ancestor's
     `dir`, which is the page's <html dir> for the element the script adds. */
  get direction() {
    const own = (this.getAttribute("dir") || "").toLowerCase();
    if (own === "rtl" || own === "ltr") return own;
    const holder = this.parentElement && this.parentElement.closest("[dir]");
    const inherited = ((holder && holder.getAttribute("dir")) || "").toLowerCase();
    return inherited === "rtl" ? "rtl" : "ltr";
  }

  _applyDirection() {
    const dir = this.direction;
    for (const node of [this.$panel, this.$launcher, this.$live]) node.setAttribute("dir", dir);
    // The corner follows the reading direction unless `position` says otherwise.
    this.classList.toggle("rtl", dir === "rtl");
  }

  /* Text on the accent and the accent as text must stay readable (WCAG AA, 4.5:1) for
     whatever colour the site chose: white or near-black on the accent, whichever
     contrasts more, and for links and the read receipt the accent darkened (light
     theme) or lightened (dark theme) just enough. A page's own --support-chat-accent-text
     and --support-chat-accent-ink still win. */
  _applyAccentContrast() {
    this.$probe.style.color = "var(--accent)";
    const rgb = parseRgb(getComputedStyle(this.$probe).color);
    for (const name of ["--auto-accent-text", "--auto-accent-ink", "--auto-accent-ink-dark"]) this.style.removeProperty(name);
    if (!rgb) return;
    const onWhite = contrast(rgb, WHITE);
    const onDark = contrast(rgb, INK);
    this.style.setProperty("--auto-accent-text", onWhite >= onDark ? "#fff" : "#111827");
    this.style.setProperty("--auto-accent-ink", cssRgb(readableOn(rgb, WHITE, [0, 0, 0])));
    this.style.setProperty("--auto-accent-ink-dark", cssRgb(readableOn(rgb, DARK_BG, [255, 255, 255])));
  }

  // --- public API ---------------------------------------------------------------------

  open(options = {}) {
    this.isOpen = true;
    if (options.remember !== false) tabStore.set(this.openKey, true);
    this.classList.add("is-open");
    this.$panel.hidden = false;
    this.$launcher.setAttribute("aria-expanded", "true");
    this.unread = 0;
    this._renderBadge();
    this._scrollToEnd();
    if (options.focus !== false) this.$input.focus();
  }

  close() {
    this.isOpen = false;
    tabStore.remove(this.openKey);
    this.classList.remove("is-open");
    this.$panel.hidden = true;
    this.$launcher.setAttribute("aria-expanded", "false");
    this._renderBadge();
    this.$launcher.focus();
  }

  /* Ask for a person: the conversation goes to the staff queue and the AI pauses. */
  requestHandoff() {
    // aria-disabled, not disabled: a disabled button drops the keyboard focus.
    if (this.$handoff.getAttribute("aria-disabled") === "true") return;
    if (!this.session) {
      // No conversation yet: asking for a person starts one; the frame follows on connect.
      this._wantHandoff = true;
      this.$handoff.setAttribute("aria-disabled", "true");
      this._ensureConversation();
      return;
    }
    if (this._sendFrame({ type: "handoff" })) this.$handoff.setAttribute("aria-disabled", "true");
  }

  /* Forget this conversation (on this device); the next message starts a fresh one. */
  newConversation() {
    this._closeSocket();
    store.remove(this.storageKey);
    this._clearConversation();
    this._start(this.t("newConversationStarted"));
    this.$input.focus();
  }
}
