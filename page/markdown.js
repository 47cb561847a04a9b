// The chat page's Markdown renderer, bundled by esbuild into
// llaf/static/markdown.js (make page), so that the page needs no CDN.
//
// A reply is the model's text, and the model's text is untrusted: raw HTML
// in it is shown as text (escaped here, so that "<div>" in an answer about
// HTML stays visible), and DOMPurify then removes whatever could still run
// or reach out (javascript: links, event attributes, images that would
// load a URL of the model's choosing).
import DOMPurify from "dompurify";
import { Marked } from "marked";

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (s) => s.replace(/[&<>"']/g, (c) => escapes[c]);

const marked = new Marked({
  gfm: true,
  breaks: true, // a chat reply's single newlines are line breaks
  renderer: {
    html: (token) => escape(token.text),
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "video", "audio", "iframe"],
  FORBID_ATTR: ["style"],
};

// The sanitized HTML of `text`, a reply's Markdown.
function render(text) {
  return DOMPurify.sanitize(marked.parse(text).trim(), PURIFY);
}

window.llafMarkdown = {
  render,
  versions: { marked: MARKED_VERSION, dompurify: DOMPurify.version },
};
