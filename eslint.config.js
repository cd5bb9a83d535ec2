// ESLint (flat config) for the platform's browser JavaScript: the widget (static/widget/,
// a classic loader and its ES modules) and the console's scripts. `make lint` runs it.
// The scripts are served as they are, with no build step, so what is linted is what runs.
import js from "@eslint/js";

// The browser APIs the scripts use (listed rather than taken from a package, so a new
// one is a deliberate choice and an accidental global is an error).
const browser = {
  window: "readonly",
  document: "readonly",
  location: "readonly",
  navigator: "readonly",
  console: "readonly",
  setTimeout: "readonly",
  clearTimeout: "readonly",
  setInterval: "readonly",
  clearInterval: "readonly",
  requestAnimationFrame: "readonly",
  fetch: "readonly",
  WebSocket: "readonly",
  localStorage: "readonly",
  crypto: "readonly",
  URL: "readonly",
  HTMLElement: "readonly",
  customElements: "readonly",
  CSSStyleSheet: "readonly",
  MutationObserver: "readonly",
  getComputedStyle: "readonly",
};

const rules = {
  eqeqeq: ["error", "always"],
  "no-unused-vars": ["error", { caughtErrors: "none" }],
  "no-var": "off",
  "prefer-const": "error",
};

export default [
  { ignores: ["node_modules/", "staticfiles/", ".venv/", "var/", "test-artifacts/"] },
  js.configs.recommended,
  {
    files: ["static/widget/chat/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browser },
    rules,
  },
  {
    files: ["static/widget/widget.js", "conversations/console/static/console/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: browser },
    rules,
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
  },
];
