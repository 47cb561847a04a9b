// The page: loads the model in the worker (the one `llaf web` serves at
// /model.gguf, or a file picked from disk), chats, and exposes the
// scripting hook `window.llaf`:
//   llaf.ready                     a Promise, resolved once a model is loaded
//   llaf.generate(prompt, options) a Promise of {ids, text}: the prompt's and
//       the new token ids, and the new text; options max_new_tokens,
//       temperature, top_k, top_p, seed (greedy by default)
//   llaf.lastStats                 the last generation's timings (prefill_ms,
//       decode_tokens, decode_ms, engine_ms: the decode steps' time in the engine)
// ?threads=N in the page's URL sets the engine's threads (default one a core).

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL("./engine.js", import.meta.url), { type: "module" });
const pending = new Map(); // request id -> {resolve, reject, onToken}
let nextId = 1;
const conversation = [];
let readyResolve;
let readyReject;
const ready = new Promise((resolve, reject) => { readyResolve = resolve; readyReject = reject; });
ready.catch(() => {}); // a failed first load is shown on the page; a later pick may still succeed
let loaded = false;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function setBusy(busy) {
  $("prompt").disabled = busy || !loaded;
  $("send").disabled = busy || !loaded;
  $("prompt").placeholder = loaded ? "Ask something (Enter sends, Shift+Enter for a new line)" : "Loading the model…";
}

function request(message, onToken) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onToken });
    worker.postMessage({ ...message, id });
  });
}

worker.onmessage = ({ data }) => {
  const p = pending.get(data.id);
  switch (data.type) {
    case "progress":
      $("loading").hidden = false;
      $("loading-what").textContent = data.what;
      $("progress").max = data.total || 1;
      $("progress").value = data.done;
      break;
    case "ready":
      loaded = true;
      $("loading").hidden = true;
      $("error").hidden = true;
      $("model").textContent = `${data.model.name} (${data.model.storage}, context ${data.model.context})`;
      setBusy(false);
      readyResolve(data.model);
      break;
    case "token":
      p?.onToken?.(data.text);
      break;
    case "done":
      pending.delete(data.id);
      window.llaf.lastStats = data.stats;
      p.resolve(data);
      break;
    case "error":
      $("loading").hidden = true;
      if (p) {
        pending.delete(data.id);
        p.reject(new Error(data.message));
      } else { // a failed load
        showError(`Cannot load the model: ${data.message}`);
        if (!loaded) readyReject(new Error(data.message));
        setBusy(false);
      }
      break;
  }
};
worker.onerror = (e) => {
  $("loading").hidden = true;
  showError(`The engine failed: ${e.message}`);
};

function addMessage(role, text) {
  document.querySelector("#messages .empty")?.remove();
  const div = document.createElement("div");
  div.className = `message ${role}`;
  div.textContent = text;
  $("messages").append(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

async function send(text) {
  const options = {
    max_new_tokens: Number($("max-tokens").value) || 256,
    temperature: Number($("temperature").value) || 0,
    top_p: Number($("top-p").value) || 1,
  };
  conversation.push({ role: "user", content: text });
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.dataset.state = "streaming";
  setBusy(true);
  try {
    const done = await request({ type: "generate", messages: conversation, options }, (piece) => {
      reply.textContent += piece;
      reply.scrollIntoView({ block: "end" });
    });
    reply.textContent = done.text;
    conversation.push({ role: "assistant", content: done.text });
    const s = done.stats;
    const stats = addMessage("stats", `${s.decode_tokens + 1} tokens, ${(s.decode_tokens / (s.decode_ms / 1000)).toFixed(1)} tok/s ` +
      `(prompt: ${s.prompt_tokens} tokens, ${s.cached_tokens} of them kept from the turn before, in ` +
      `${(s.prefill_ms / 1000).toFixed(2)} s)`);
    stats.className = "stats";
  } catch (err) {
    conversation.pop();
    reply.remove();
    addMessage("error", err.message);
  } finally {
    reply.dataset.state = "done";
    setBusy(false);
    $("prompt").focus();
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || $("send").disabled) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("form").requestSubmit();
  }
});
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (!file) return;
  $("error").hidden = true;
  conversation.length = 0;
  setBusy(true);
  worker.postMessage({ type: "load", file });
});

window.llaf = {
  ready,
  lastStats: null,
  async generate(prompt, options = {}) {
    await ready;
    const { ids, text } = await request({ type: "generate", prompt, options });
    return { ids, text };
  },
};

if (!self.crossOriginIsolated) {
  showError("This page is not cross-origin isolated, so the engine's threads cannot share memory: " +
    "serve it with `llaf web`, which sends the headers it needs.");
} else {
  // The model the server offers: ?model=URL, else `llaf web`'s /model.gguf;
  // ?threads=N: the engine's threads (default one a core).
  const query = new URLSearchParams(location.search);
  const threads = Number(query.get("threads")) || undefined;
  worker.postMessage({ type: "load", url: query.get("model") ?? "model.gguf", threads });
}
