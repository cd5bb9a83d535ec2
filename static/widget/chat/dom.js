/* Small DOM and data helpers. Message text becomes text nodes and <a> elements for
 * http(s) URLs only (`formatted`); nothing is ever parsed as HTML. */

export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

export function merge(base, extra) {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra || {})) {
    out[key] = isObject(value) && isObject(base[key]) ? merge(base[key], value) : value;
  }
  return out;
}

/* Fill {placeholders}; null when one is missing, so the caller can fall back. */
export function fill(template, values) {
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

export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.appendChild(child);
  return node;
}

export const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

/* Message text as DOM: text nodes, plus <a> for http(s) URLs. Line breaks are kept
   by CSS (white-space: pre-wrap); nothing is ever parsed as HTML. */
export function formatted(text) {
  const frag = document.createDocumentFragment();
  const source = String(text);
  let last = 0;
  for (const match of source.matchAll(URL_RE)) {
    const url = match[0].replace(/[.,;:!?)\]]+$/, "");
    let parsed;
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

export function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
}

export function parseArgs(raw) {
  try {
    const value = JSON.parse(raw || "{}");
    return isObject(value) ? value : {};
  } catch (e) {
    return {};
  }
}

export const ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
export const ICON_CLOSE = "M6 6l12 12M18 6L6 18";
export const ICON_SEND = "M3 20l18-8L3 4v6l12 2-12 2z";

export function icon(path, filled) {
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
