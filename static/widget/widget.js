/*
 * Support chat widget: one <script> tag on any site.
 *
 *   <script src="https://support.example.com/static/widget/widget.js" async></script>
 *
 * Defines the <support-chat> custom element (Shadow DOM, no dependencies, no build
 * step) and adds one to the page unless the page already has one. Options are
 * attributes on the element, or data-* attributes on the script tag: server, position,
 * accent, heading, lang, strings (JSON), open; data-autoload="false" only defines the
 * element. The embed guide is served at /widget/docs/; the websocket protocol is in
 * docs/widget.md.
 *
 * Safety: message text reaches the page only through textContent and text nodes;
 * links are built with DOM APIs and only for http(s) URLs. No HTML from the server or
 * the visitor is ever parsed.
 */
(() => {
  "use strict";

  const TAG = "support-chat";
  const SCRIPT = document.currentScript;
  const SCRIPT_ORIGIN = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin;
  const OPTIONS = ["server", "position", "accent", "heading", "lang", "strings", "open"];
  const STORAGE_PREFIX = "support-chat:v1:";
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const TYPING_EVERY_MS = 3000;
  const STAFF_TYPING_MS = 6000;

  const STRINGS = {
    en: {
      launcherOpen: "Open chat",
      launcherClose: "Close chat",
      unread: "{count} unread",
      title: "Support",
      close: "Close",
      subtitleModel: "Answers by {model}",
      talkToPerson: "Talk to a person",
      newConversation: "New conversation",
      newConversationStarted: "New conversation started.",
      greeting: "Hi! Ask us anything about your order, shipping or returns.",
      placeholder: "Write a message…",
      inputLabel: "Your message",
      send: "Send",
      you: "You",
      assistant: "Assistant",
      staffName: "{name} (support team)",
      staffFallback: "Support team",
      answeredBy: "Answered by {model}",
      assistantTyping: "The assistant is writing…",
      staffTyping: "{name} is typing…",
      sending: "Sending…",
      notSent: "Not sent: {reason}",
      retrySend: "Send again",
      turnFailed: "Sorry, the assistant could not answer this time ({reason}).",
      turnStopped: "The answer was stopped before it finished.",
      retry: "Try again",
      handoffBanner: "A person will reply here.",
      handoffRequested: "We have asked a person to join. A person will reply here.",
      takenOverBanner: "You are chatting with our support team.",
      resolvedBanner: "This conversation is resolved. Write again any time.",
      connecting: "Connecting…",
      reconnecting: "Connection lost. Reconnecting…",
      offline: "You are offline. Messages will be sent when you are back online.",
      conversationGone: "Your previous conversation is no longer available; this is a new one.",
      toolRunning: "Working on it…",
      toolDone: "Used {tool}",
      toolFailed: "{tool} did not work",
      tools: {
        lookup_order: {
          running: "Looking up order {order_number}…",
          done: "Looked up order {order_number}",
          failed: "Could not look up order {order_number}",
        },
        handoff_to_human: {
          running: "Connecting you with a person…",
          done: "Asked a person to join",
          failed: "Could not reach a person",
        },
      },
      errors: {
        timeout: "the AI service took too long",
        rate_limited: "too many requests right now",
        connection: "the AI service could not be reached",
        interrupted: "the server restarted",
        too_large: "the message is too long",
        invalid: "the message is empty or invalid",
        ai_paused: "a person is handling this conversation",
        default: "something went wrong",
      },
    },
    de: {
      launcherOpen: "Chat öffnen",
      launcherClose: "Chat schließen",
      unread: "{count} ungelesen",
      title: "Support",
      close: "Schließen",
      subtitleModel: "Antworten von {model}",
      talkToPerson: "Mit einem Menschen sprechen",
      newConversation: "Neues Gespräch",
      newConversationStarted: "Neues Gespräch begonnen.",
      greeting: "Hallo! Fragen Sie uns alles zu Bestellung, Versand oder Rückgabe.",
      placeholder: "Nachricht schreiben…",
      inputLabel: "Ihre Nachricht",
      send: "Senden",
      you: "Sie",
      assistant: "Assistent",
      staffName: "{name} (Support-Team)",
      staffFallback: "Support-Team",
      answeredBy: "Antwort von {model}",
      assistantTyping: "Der Assistent schreibt…",
      staffTyping: "{name} schreibt…",
      sending: "Wird gesendet…",
      notSent: "Nicht gesendet: {reason}",
      retrySend: "Erneut senden",
      turnFailed: "Der Assistent konnte diesmal nicht antworten ({reason}).",
      turnStopped: "Die Antwort wurde abgebrochen.",
      retry: "Erneut versuchen",
      handoffBanner: "Ein Mensch antwortet Ihnen hier.",
      handoffRequested: "Wir haben einen Menschen hinzugebeten. Ein Mensch antwortet Ihnen hier.",
      takenOverBanner: "Sie schreiben mit unserem Support-Team.",
      resolvedBanner: "Dieses Gespräch ist erledigt. Schreiben Sie jederzeit wieder.",
      connecting: "Verbinde…",
      reconnecting: "Verbindung unterbrochen. Verbinde neu…",
      offline: "Sie sind offline. Nachrichten werden gesendet, sobald Sie wieder online sind.",
      conversationGone: "Ihr früheres Gespräch ist nicht mehr verfügbar; dies ist ein neues.",
      toolRunning: "Einen Moment…",
      toolDone: "{tool} verwendet",
      toolFailed: "{tool} hat nicht funktioniert",
      tools: {
        lookup_order: {
          running: "Suche Bestellung {order_number}…",
          done: "Bestellung {order_number} nachgeschlagen",
          failed: "Bestellung {order_number} nicht gefunden",
        },
        handoff_to_human: {
          running: "Verbinde Sie mit einem Menschen…",
          done: "Einen Menschen hinzugebeten",
          failed: "Konnte niemanden erreichen",
        },
      },
      errors: {
        timeout: "der KI-Dienst hat zu lange gebraucht",
        rate_limited: "gerade zu viele Anfragen",
        connection: "der KI-Dienst war nicht erreichbar",
        interrupted: "der Server wurde neu gestartet",
        too_large: "die Nachricht ist zu lang",
        invalid: "die Nachricht ist leer oder ungültig",
        ai_paused: "ein Mensch betreut dieses Gespräch",
        default: "etwas ist schiefgelaufen",
      },
    },
  };

  const CSS = [
    ":host{all:initial;display:block;position:fixed;bottom:var(--support-chat-offset,20px);right:var(--support-chat-offset,20px);z-index:var(--support-chat-z,2147483000);",
    "--accent:var(--support-chat-accent,#2563eb);--accent-text:var(--support-chat-accent-text,#fff);--bg:var(--support-chat-background,#fff);",
    "--text:var(--support-chat-text,#1f2937);--muted:var(--support-chat-muted,#6b7280);--bubble:var(--support-chat-bubble,#f1f3f6);",
    "--radius:var(--support-chat-radius,16px);font-family:var(--support-chat-font,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif);",
    "font-size:15px;line-height:1.45;color:var(--text)}",
    ":host([position=left]){right:auto;left:var(--support-chat-offset,20px)}",
    "*{box-sizing:border-box}",
    "button{font:inherit;cursor:pointer}",
    ":focus-visible{outline:3px solid var(--accent);outline-offset:2px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".launcher{position:relative;width:60px;height:60px;border-radius:50%;border:0;background:var(--accent);color:var(--accent-text);",
    "box-shadow:0 6px 20px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;margin-left:auto}",
    ":host([position=left]) .launcher{margin-left:0}",
    ".launcher svg{width:28px;height:28px}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#dc2626;color:#fff;",
    "font-size:12px;font-weight:700;line-height:22px;text-align:center;border:2px solid #fff}",
    ".badge[hidden]{display:none}",
    ".panel{position:absolute;bottom:76px;right:0;width:min(380px,calc(100vw - 32px));height:min(620px,calc(100vh - 120px));",
    "background:var(--bg);border-radius:var(--radius);box-shadow:0 12px 40px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden}",
    ":host([position=left]) .panel{right:auto;left:0}",
    ".panel[hidden]{display:none}",
    "header{background:var(--accent);color:var(--accent-text);padding:14px 12px 10px 16px}",
    ".head-row{display:flex;align-items:flex-start;gap:8px}",
    ".titles{flex:1;min-width:0}",
    "h2{margin:0;font-size:17px;font-weight:650;line-height:1.3}",
    ".model{margin:2px 0 0;font-size:12px;opacity:.9;overflow-wrap:anywhere}",
    ".icon-btn{border:0;background:transparent;color:inherit;width:36px;height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center;flex:none}",
    ".icon-btn:hover{background:rgba(255,255,255,.18)}",
    ".icon-btn svg{width:20px;height:20px}",
    ".tools{display:flex;gap:8px;margin-top:10px;flex-wrap:wrap}",
    ".tool-btn{border:1px solid rgba(255,255,255,.6);background:transparent;color:inherit;border-radius:999px;padding:4px 12px;font-size:13px}",
    ".tool-btn:hover{background:rgba(255,255,255,.18)}",
    ".tool-btn[hidden]{display:none}",
    "[aria-disabled=true]{opacity:.6;cursor:default}",
    ".status{font-size:13px;padding:6px 16px;background:#fef3c7;color:#78350f}",
    ".status:empty{display:none}",
    ".banner{font-size:13px;padding:8px 16px;background:#ecfdf5;color:#065f46;border-bottom:1px solid #d1fae5}",
    ".banner:empty{display:none}",
    ".log{flex:1;overflow-y:auto;padding:16px 14px 8px;display:flex;flex-direction:column;gap:8px;margin:0;list-style:none;overscroll-behavior:contain}",
    ".msg{max-width:85%;display:flex;flex-direction:column;gap:2px}",
    ".msg .who{font-size:12px;color:var(--muted);padding:0 4px}",
    ".bubble{padding:9px 13px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}",
    ".bubble a{color:inherit;text-decoration:underline}",
    ".msg.user{align-self:flex-end;align-items:flex-end}",
    ".msg.user .bubble{background:var(--accent);color:var(--accent-text);border-bottom-right-radius:4px}",
    ".msg.assistant,.msg.staff{align-self:flex-start}",
    ".msg.assistant .bubble{background:var(--bubble);border-bottom-left-radius:4px}",
    ".msg.staff .bubble{background:#fff7ed;border:1px solid #fed7aa;border-bottom-left-radius:4px}",
    ".msg.streaming .bubble::after{content:'▍';opacity:.5;animation:blink 1s steps(2) infinite}",
    ".caption{font-size:11px;color:var(--muted);padding:0 4px}",
    ".msg.pending .bubble{opacity:.65}",
    ".msg.unsent .bubble{opacity:.8;outline:2px solid #dc2626}",
    ".note{font-size:12px;color:#b91c1c;display:flex;gap:8px;align-items:center;flex-wrap:wrap;padding:0 4px}",
    ".msg.pending .note{color:var(--muted)}",
    ".link-btn{border:0;background:none;color:var(--accent);text-decoration:underline;padding:0;font-size:12px}",
    ".tool{align-self:flex-start;font-size:13px;color:var(--muted);display:flex;align-items:center;gap:6px;padding:2px 6px}",
    ".tool .dot{width:8px;height:8px;border-radius:50%;background:var(--muted)}",
    ".commentary{align-self:flex-start;font-size:13px;color:var(--muted);font-style:italic;padding:2px 6px}",
    ".tool.running .dot{background:var(--accent);animation:pulse 1s ease-in-out infinite}",
    ".tool.ok .dot{background:#16a34a}",
    ".tool.failed .dot{background:#dc2626}",
    ".problem{align-self:stretch;background:#fef2f2;border:1px solid #fecaca;color:#7f1d1d;border-radius:12px;padding:10px 12px;font-size:14px}",
    ".problem p{margin:0}",
    ".problem button{margin-top:6px;border:0;border-radius:8px;background:#b91c1c;color:#fff;padding:5px 12px;font-size:13px}",
    ".greeting{align-self:flex-start;color:var(--muted);font-size:14px;padding:4px}",
    ".typing{font-size:13px;color:var(--muted);padding:0 18px 6px;min-height:1.4em}",
    ".typing:empty{display:none}",
    "form{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;border-top:1px solid #e5e7eb}",
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:12px;padding:9px 12px;font:inherit;color:var(--text);",
    "background:#fff;max-height:120px;min-height:42px;line-height:1.4}",
    "textarea:focus{outline:2px solid var(--accent);outline-offset:0;border-color:transparent}",
    ".send{width:42px;height:42px;border:0;border-radius:50%;background:var(--accent);color:var(--accent-text);display:flex;align-items:center;justify-content:center;flex:none}",
    ".send svg{width:20px;height:20px}",
    "@keyframes blink{to{opacity:0}}",
    "@keyframes pulse{50%{opacity:.3}}",
    "@media (prefers-reduced-motion:reduce){*{animation:none!important}}",
    "@media (max-width:480px){",
    ":host(.is-open){inset:0;bottom:0;right:0;left:0;top:0}",
    ":host(.is-open) .launcher{display:none}",
    ".panel{position:fixed;inset:0;width:100vw;height:100%;border-radius:0;bottom:0}",
    "header{padding-top:max(14px,env(safe-area-inset-top))}",
    "form{padding-bottom:max(12px,env(safe-area-inset-bottom))}",
    "textarea{font-size:16px}",
    "}",
  ].join("");

  // --- small helpers -----------------------------------------------------------------

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

  function merge(base, extra) {
    const out = { ...base };
    for (const [key, value] of Object.entries(extra || {})) {
      out[key] = isObject(value) && isObject(base[key]) ? merge(base[key], value) : value;
    }
    return out;
  }

  /* Fill {placeholders}; null when one is missing, so the caller can fall back. */
  function fill(template, values) {
    let missing = false;
    const text = String(template).replace(/\{(\w+)\}/g, (_, key) => {
      const value = values && values[key];
      if (value === undefined || value === null || value === "") {
        missing = true;
        return "";
      }
      return String(value);
    });
    return missing ? null : text;
  }

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.appendChild(child);
    return node;
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

  /* Message text as DOM: text nodes, plus <a> for http(s) URLs. Line breaks are kept
     by CSS (white-space: pre-wrap); nothing is ever parsed as HTML. */
  function formatted(text) {
    const frag = document.createDocumentFragment();
    const source = String(text);
    let last = 0;
    for (const match of source.matchAll(URL_RE)) {
      const url = match[0].replace(/[.,;:!?)\]]+$/, "");
      let parsed = null;
      try {
        parsed = new URL(url);
      } catch (e) {
        parsed = null;
      }
      if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) continue;
      frag.appendChild(document.createTextNode(source.slice(last, match.index)));
      frag.appendChild(el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
      last = match.index + url.length;
    }
    frag.appendChild(document.createTextNode(source.slice(last)));
    return frag;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function parseArgs(raw) {
    try {
      const value = JSON.parse(raw || "{}");
      return isObject(value) ? value : {};
    } catch (e) {
      return {};
    }
  }

  /* localStorage, or memory where storage is blocked (private modes, sandboxed frames). */
  const memory = new Map();
  const store = {
    get(key) {
      try {
        return JSON.parse(localStorage.getItem(key) || "null");
      } catch (e) {
        return memory.get(key) || null;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(key, JSON.stringify(value));
      } catch (e) {
        memory.set(key, value);
      }
    },
    remove(key) {
      try {
        localStorage.removeItem(key);
      } catch (e) {
        /* storage blocked */
      }
      memory.delete(key);
    },
  };

  const ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  const ICON_CLOSE = "M6 6l12 12M18 6L6 18";
  const ICON_SEND = "M3 20l18-8L3 4v6l12 2-12 2z";

  function icon(path, filled) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    if (filled) {
      p.setAttribute("fill", "currentColor");
    } else {
      p.setAttribute("fill", "none");
      p.setAttribute("stroke", "currentColor");
      p.setAttribute("stroke-width", "2");
      p.setAttribute("stroke-linecap", "round");
    }
    svg.appendChild(p);
    return svg;
  }

  // --- the element -------------------------------------------------------------------

  class SupportChat extends HTMLElement {
    /* The built-in text tables by language; a page may add one before setting `lang`. */
    static get strings() {
      return STRINGS;
    }

    static get observedAttributes() {
      return ["accent", "heading", "strings", "lang"];
    }

    connectedCallback() {
      if (this._built) return;
      this._built = true;
      this._resetState();
      this._build();
      this._applyAttributes();
      if (this.hasAttribute("open")) this.open({ focus: false });
      this._onOnline = () => {
        this._setStatus("");
        this._reconnectNow();
      };
      this._onOffline = () => this._setStatus(this.t("offline"));
      window.addEventListener("online", this._onOnline);
      window.addEventListener("offline", this._onOffline);
      this._start();
    }

    disconnectedCallback() {
      window.removeEventListener("online", this._onOnline);
      window.removeEventListener("offline", this._onOffline);
      this._closeSocket();
      this.shadowRoot.replaceChildren();
      this._built = false;
    }

    attributeChangedCallback() {
      if (this._built) this._applyAttributes();
    }

    get server() {
      return (this.getAttribute("server") || SCRIPT_ORIGIN).replace(/\/+$/, "");
    }

    get storageKey() {
      return STORAGE_PREFIX + this.server;
    }

    _resetState() {
      this.session = null;
      this.lastSeq = 0; // highest seq received: the reconnect asks for what follows
      this.items = new Map(); // seq -> element (or null for items not drawn)
      this.pending = new Map(); // client_id -> {id, text, el}: sent, not yet stored
      this.turns = new Map(); // turn id -> {live, segments, current, calls}
      this.toolRows = new Map(); // call_id -> element
      this.problems = new Map(); // turn id -> element
      this.activeTurns = new Set();
      this.readyTurns = [];
      this.status = "open";
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
      this._renderTexts();
    }

    // --- building the DOM ---------------------------------------------------------------

    _build() {
      const root = this.shadowRoot || this.attachShadow({ mode: "open" });
      const on = (node, type, fn) => node.addEventListener(type, fn);

      this.$launcher = el("button", { className: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "panel" }, [icon(ICON_CHAT)]);
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

      this.$input = el("textarea", { rows: "1", id: "input", autocomplete: "off" });
      this.$inputLabel = el("label", { className: "sr", for: "input" });
      this.$send = el("button", { className: "send", type: "submit" }, [icon(ICON_SEND, true)]);
      this.$form = el("form", {}, [this.$inputLabel, this.$input, this.$send]);
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
      root.replaceChildren(this.$panel, this.$launcher, this.$live);
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
      const model = this.session && this.session.model;
      this.$model.textContent = model ? this.t("subtitleModel", { model: model.label }) : "";
      this.$close.setAttribute("aria-label", this.t("close"));
      this.$handoff.textContent = this.t("talkToPerson");
      this.$new.textContent = this.t("newConversation");
      this.$greeting.textContent = this.t("greeting");
      this.$input.setAttribute("placeholder", this.t("placeholder"));
      this.$inputLabel.textContent = this.t("inputLabel");
      this.$send.setAttribute("aria-label", this.t("send"));
      this._renderBadge();
      this._renderBanner();
      this._renderTyping();
    }

    // --- public API ---------------------------------------------------------------------

    open(options = {}) {
      this.isOpen = true;
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
      if (this._sendFrame({ type: "handoff" })) this.$handoff.setAttribute("aria-disabled", "true");
    }

    /* Forget this conversation (on this device) and start a fresh one. */
    newConversation() {
      this._closeSocket();
      store.remove(this.storageKey);
      this._clearConversation();
      this._start(this.t("newConversationStarted"));
      this.$input.focus();
    }

    // --- session and socket -------------------------------------------------------------

    async _start(notice) {
      clearTimeout(this._timer);
      this._setStatus(this.t("connecting"));
      const saved = store.get(this.storageKey);
      let session;
      try {
        session = await this._fetchSession(saved && saved.token);
      } catch (err) {
        if (err.status === 404 && saved) {
          store.remove(this.storageKey);
          this._start(this.t("conversationGone"));
        } else {
          this._setStatus(navigator.onLine === false ? this.t("offline") : this.t("reconnecting"));
          this._later(() => this._start(notice));
        }
        return;
      }
      this.session = session;
      store.set(this.storageKey, { conversation: session.conversation, token: session.token });
      this.status = session.status;
      this.aiPaused = session.ai_paused;
      if (session.limits) this.$input.maxLength = session.limits.max_message_chars;
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
      else this._start();
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

    _dispatch(data) {
      let event;
      try {
        event = JSON.parse(data);
      } catch (e) {
        return;
      }
      const handler = HANDLERS[event.type];
      if (handler) handler.call(this, event);
    }

    // --- server events -------------------------------------------------------------------

    _onReady(event) {
      this._attempt = 0;
      this._setStatus(navigator.onLine === false ? this.t("offline") : "");
      this.catchingUp = this.lastSeq === 0; // a first load is history, not news
      this.session.model = event.model;
      this.session.agent = event.agent;
      this._setConversationState(event.status, event.ai_paused);
      this.readyTurns = event.turns || [];
      this.activeTurns = new Set(this.readyTurns.filter((t) => t.status === "queued" || t.status === "running").map((t) => t.id));
      this._renderTexts();
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
    }

    _onTurnQueued(event) {
      this.activeTurns.add(event.turn);
      this._renderTyping();
    }

    _onTurnStarted(event) {
      this.activeTurns.add(event.turn);
      const view = this._turn(event.turn);
      view.live = true; // deltas are drawn only for turns seen starting on this socket
      this._renderTyping();
    }

    _onDelta(event) {
      const view = this.turns.get(event.turn);
      if (!view || !view.live) return;
      if (!view.current) {
        const bubble = el("div", { className: "bubble" });
        const node = el("li", { className: "msg assistant streaming", "aria-busy": "true" }, [bubble]);
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
      this._setConversationState(event.status, event.ai_paused);
      if (event.status === "waiting_on_staff" && !wasWaiting) this._noticed(this.t("handoffBanner"));
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

    _onAck(event) {
      if (event.frame === "retry") {
        this._removeProblem(event.turn);
        this.activeTurns.add(event.new_turn);
        this._renderTyping();
      } else if (event.frame === "handoff") {
        this._announce(this.t("handoffRequested"));
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
      } else {
        console.warn("support-chat:", event.code, event.message);
      }
    }

    // --- drawing stored items --------------------------------------------------------------

    _storedUser(message) {
      const item = message.client_id && this.pending.get(message.client_id);
      if (item) {
        this.pending.delete(message.client_id);
        item.el.classList.remove("pending", "unsent");
        item.el.querySelector(".note")?.remove();
        return this._append(item.el); // moves it into seq order, above other unsent ones
      }
      return this._append(this._bubble("user", message.text));
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
      const label = modelLabel || (this.session && this.session.model && this.session.model.label);
      if (label) node.appendChild(el("span", { className: "caption", text: this.t("answeredBy", { model: label }) }));
      node.insertBefore(el("span", { className: "sr", text: this.t("assistant") + ": " }), node.firstChild);
      this._followLog();
      this._noticed(this.t("assistant") + ": " + message.text);
      return node;
    }

    _storedStaff(message) {
      const name = (message.metadata && message.metadata.author_name) || "";
      const who = name ? this.t("staffName", { name }) : this.t("staffFallback");
      const node = this._append(this._bubble("staff", message.text, who));
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

    _bubble(kind, text, who) {
      const node = el("li", { className: "msg " + kind });
      const label = who || (kind === "user" ? this.t("you") : this.t("assistant"));
      if (kind === "staff") node.appendChild(el("span", { className: "who", text: label }));
      else if (kind === "user") node.appendChild(el("span", { className: "sr", text: label + ": " }));
      const bubble = el("div", { className: "bubble" });
      bubble.appendChild(formatted(text));
      node.appendChild(bubble);
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
      if (this.status === "waiting_on_staff") text = this.t("handoffBanner");
      else if (this.aiPaused) text = this.t("takenOverBanner");
      else if (this.status === "resolved") text = this.t("resolvedBanner");
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

    // --- sending -------------------------------------------------------------------------

    _submit() {
      const text = this.$input.value;
      if (!text.trim()) return;
      const item = { id: newId(), text, el: this._bubble("user", text), unsent: false };
      item.el.classList.add("pending");
      item.el.appendChild(el("span", { className: "note", text: this.t("sending") }));
      this.pending.set(item.id, item);
      this.$log.appendChild(item.el);
      this._scrollToEnd();
      this.$input.value = "";
      this._autosize();
      this._lastTypingSent = 0;
      // Unsent messages wait for the connection and are sent (idempotently) on reconnect.
      this._sendFrame({ type: "message", text, client_id: item.id });
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
      item.el.appendChild(note);
    }

    _sendTyping() {
      const now = Date.now();
      if (now - this._lastTypingSent < TYPING_EVERY_MS || !this.$input.value.trim()) return;
      if (this._sendFrame({ type: "typing" })) this._lastTypingSent = now;
    }

    // --- view helpers ----------------------------------------------------------------------

    _clearConversation() {
      this._closeSocket();
      const greeting = this.$greeting;
      this.$log.replaceChildren(greeting);
      const keepOpen = this.isOpen;
      this._resetState();
      this.isOpen = keepOpen;
      this._renderTexts();
    }

    _renderBadge() {
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
  }

  const HANDLERS = {
    ready: SupportChat.prototype._onReady,
    caught_up: SupportChat.prototype._onCaughtUp,
    message: SupportChat.prototype._onMessage,
    "turn.queued": SupportChat.prototype._onTurnQueued,
    "turn.started": SupportChat.prototype._onTurnStarted,
    "text.delta": SupportChat.prototype._onDelta,
    "turn.commentary": SupportChat.prototype._onCommentary,
    "tool.started": SupportChat.prototype._onToolStarted,
    "tool.finished": SupportChat.prototype._onToolFinished,
    "turn.completed": SupportChat.prototype._onTurnCompleted,
    "turn.failed": SupportChat.prototype._onTurnFailed,
    "turn.cancelled": SupportChat.prototype._onTurnCancelled,
    "conversation.updated": SupportChat.prototype._onConversationUpdated,
    typing: SupportChat.prototype._onTyping,
    ack: SupportChat.prototype._onAck,
    error: SupportChat.prototype._onError,
  };

  // --- bootstrap: one script tag is the whole embed ------------------------------------

  if (!customElements.get(TAG)) customElements.define(TAG, SupportChat);

  function autoload() {
    if (!SCRIPT || SCRIPT.dataset.autoload === "false" || document.querySelector(TAG)) return;
    const node = document.createElement(TAG);
    for (const name of OPTIONS) {
      const value = SCRIPT.getAttribute("data-" + name);
      if (value !== null) node.setAttribute(name, value);
    }
    if (!node.hasAttribute("server")) node.setAttribute("server", SCRIPT_ORIGIN);
    document.body.appendChild(node);
  }

  if (document.body) autoload();
  else document.addEventListener("DOMContentLoaded", autoload);
})();
