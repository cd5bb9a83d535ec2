/* localStorage (the visitor token: across visits) and sessionStorage (the panel's open
 * state: this tab's pages of the site), or memory where storage is blocked (private
 * modes, sandboxed frames). */

function backed(storage) {
  const memory = new Map();
  const area = () => window[storage]; // reading it can throw where storage is blocked
  return {
    get(key) {
      try {
        return JSON.parse(area().getItem(key) || "null");
      } catch (e) {
        return memory.get(key) || null;
      }
    },
    set(key, value) {
      try {
        area().setItem(key, JSON.stringify(value));
      } catch (e) {
        memory.set(key, value);
      }
    },
    remove(key) {
      try {
        area().removeItem(key);
      } catch (e) {
        /* storage blocked */
      }
      memory.delete(key);
    },
  };
}

export const store = backed("localStorage");
export const tabStore = backed("sessionStorage");
