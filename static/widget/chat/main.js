/* The widget's entry point, imported by the widget.js loader with the <script> tag that
 * embedded it: defines <support-chat> and, unless the tag says data-autoload="false" or
 * the page already has one, adds an element configured from the tag's data-* options. */

import { SupportChat, TAG } from "./element.js";

const OPTIONS = ["server", "position", "accent", "theme", "dir", "heading", "lang", "strings", "open"];

export function start(script) {
  if (!customElements.get(TAG)) customElements.define(TAG, SupportChat);
  const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  function autoload() {
    if (!script || script.dataset.autoload === "false" || document.querySelector(TAG)) return;
    const node = document.createElement(TAG);
    for (const name of OPTIONS) {
      const value = script.getAttribute("data-" + name);
      if (value !== null) node.setAttribute(name, value);
    }
    if (!node.hasAttribute("server")) node.setAttribute("server", origin);
    document.body.appendChild(node);
  }

  if (document.body) autoload();
  else document.addEventListener("DOMContentLoaded", autoload);
}
