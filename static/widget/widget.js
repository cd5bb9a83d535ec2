/*
 * Support chat widget: one <script> tag on any site.
 *
 *   <script src="https://support.example.com/static/widget/widget.js" async></script>
 *
 * Defines the <support-chat> custom element (Shadow DOM, no dependencies, no build
 * step) and adds one to the page unless the page already has one. Options are
 * attributes on the element, or data-* attributes on the script tag: server, position,
 * accent, heading, lang, strings (JSON), open; data-autoload="false" only defines the
 * element (wait for it with `customElements.whenDefined("support-chat")`). The embed
 * guide is served at /widget/docs/; the websocket protocol is in docs/widget.md.
 *
 * This file is a small classic script, so the embed snippet stays one plain tag: it
 * imports the widget's ES modules (static/widget/chat/, entry point main.js) from
 * beside its own URL and hands them the tag. Modules are fetched with CORS; the
 * platform serves static files with `Access-Control-Allow-Origin: *` (WhiteNoise), and
 * a page's Content-Security-Policy needs the platform's origin in `script-src`.
 *
 * Safety: message text reaches the page only through textContent and text nodes;
 * links are built with DOM APIs and only for http(s) URLs. No HTML from the server or
 * the visitor is ever parsed.
 */
(() => {
  "use strict";

  // Every module of static/widget/chat/. Fetched at once (modulepreload) rather than one
  // import level after another: four round trips fewer before the launcher shows.
  // tests/widget/test_script.py checks this list against the directory.
  const MODULES = ["main", "element", "connection", "events", "transcript", "rating", "view", "dom", "store", "strings", "styles"];

  const script = document.currentScript; // only set while this classic script runs
  const base = script && script.src ? script.src : location.href;
  const url = (name) => new URL("chat/" + name + ".js", base).href;
  for (const name of MODULES) {
    const link = document.createElement("link");
    link.rel = "modulepreload";
    link.href = url(name);
    (document.head || document.documentElement).appendChild(link);
  }
  import(url("main"))
    .then((chat) => chat.start(script))
    .catch((error) => console.error("support-chat: the widget could not load", error));
})();
