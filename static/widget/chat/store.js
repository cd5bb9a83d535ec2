/* localStorage, or memory where storage is blocked (private modes, sandboxed frames). */
const memory = new Map();
export const store = {
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
