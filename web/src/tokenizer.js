// A GGUF file's tokenizer and chat template, as llaf/tokenizer.py builds
// them for Python (and transformers for its GGUF loader): the file's
// vocabulary and merges as a tokenizer.json, byte-level BPE ("gpt2": GPT-2,
// Llama 3, Qwen, SmolLM2) or sentencepiece-style BPE with byte fallback
// ("llama": Llama 2, Mistral, Phi-3, Gemma), run by @huggingface/tokenizers
// (transformers.js's tokenizers), and its chat template rendered by
// @huggingface/jinja.

import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import tables from "llaf-tables";
import { GGUFError } from "./gguf.js";

const CONTROL = 3; // llama.cpp's token type of control tokens (<|im_start|>, ...)
const USER_DEFINED = 4;

const added = (id, content, special) =>
  ({ id, content, special, single_word: false, lstrip: false, rstrip: false, normalized: false });

// The merges of a sentencepiece vocabulary (its file has none): the ones its
// tokens and scores imply, as transformers' `generate_merges` orders them
// (llaf/tokenizer.py `_merges`).
function impliedMerges(tokens, scores) {
  const vocab = new Map(tokens.map((t, i) => [t, i]));
  const scored = new Map(tokens.map((t, i) => [t, scores[i]])); // (a repeated token: its first place, its last score)
  const merges = [];
  scored.forEach((score, token) => {
    const chars = [...token]; // code points, as Python's slices count them
    const pairs = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join("");
      const right = chars.slice(i).join("");
      if (vocab.has(left) && vocab.has(right)) pairs.push([left, right, score, i, chars.length - i]);
    }
    pairs.sort((a, b) => vocab.get(a[0]) - vocab.get(b[0]) || vocab.get(a[1]) - vocab.get(b[1]));
    merges.push(...pairs);
  });
  // by score, then the left part's length, then the right's, all descending (a stable sort)
  merges.sort((a, b) => b[2] - a[2] || b[3] - a[3] || b[4] - a[4]);
  return merges.map(([left, right]) => [left, right]);
}

export class ModelTokenizer {
  constructor(g) {
    const f = g.fields;
    const model = f["tokenizer.ggml.model"];
    if (model !== "gpt2" && model !== "llama") {
      throw new GGUFError(`${g.name}: the browser builds byte-level BPE (gpt2) and sentencepiece-style (llama) ` +
        `tokenizers; this file's is ${model}`);
    }
    const tokens = f["tokenizer.ggml.tokens"];
    const merges = model === "gpt2" ? f["tokenizer.ggml.merges"]
      : f["tokenizer.ggml.merges"] ?? (Array.isArray(f["tokenizer.ggml.scores"]) && Array.isArray(tokens)
        ? impliedMerges(tokens, f["tokenizer.ggml.scores"]) : undefined);
    if (!Array.isArray(tokens) || !Array.isArray(merges)) throw new GGUFError(`${g.name}: GGUF metadata lacks its tokenizer`);
    const vocab = {};
    tokens.forEach((t, i) => { vocab[t] = i; });
    const kinds = f["tokenizer.ggml.token_type"] ?? [];
    // The tokenizer class's default bos/eos/unk (GPT2Tokenizer's, LlamaTokenizer's),
    // the control tokens whole and special, user-defined ones whole
    // (llaf/tokenizer.py `_gguf_backend`).
    const addedTokens = [];
    const seen = new Set();
    const add = (id, special) => {
      if (id !== undefined && !seen.has(id)) { seen.add(id); addedTokens.push(added(id, tokens[id], special)); }
    };
    for (const t of model === "gpt2" ? ["<|endoftext|>"] : ["<s>", "</s>", "<unk>"]) add(vocab[t], true);
    kinds.forEach((k, i) => { if (k === CONTROL) add(i, true); });
    kinds.forEach((k, i) => { if (k === USER_DEFINED) add(i, false); });
    this.specials = {};
    for (const [name, key] of [["bos_token", "bos_token_id"], ["eos_token", "eos_token_id"],
      ["unk_token", "unknown_token_id"], ["pad_token", "padding_token_id"]]) {
      const id = f[`tokenizer.ggml.${key}`];
      if (id === undefined) continue;
      if (!(id >= 0 && id < tokens.length)) throw new GGUFError(`${g.name}: tokenizer.ggml.${key} ${id} is not a token id`);
      this.specials[name] = tokens[id];
      add(id, true);
    }
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    // sentencepiece's "dummy prefix" (a space before the text, taken off again
    // when decoding), unless the file says otherwise (Gemma's); Phi-3's before
    // each stretch of text between added tokens, as transformers gives it
    const prefix = Boolean(f["tokenizer.ggml.add_space_prefix"] ?? true);
    const phi3 = f["general.architecture"] === "phi3" && prefix;
    let preTokenizer = model === "gpt2" ? byteLevel
      : phi3 ? null : { type: "Metaspace", replacement: "\u2581", split: false, prepend_scheme: prefix ? "first" : "never" };
    const split = tables.PRE_TOKENIZER_SPLITS[f["tokenizer.ggml.pre"] ?? ""];
    if (split !== undefined) {
      preTokenizer = {
        type: "Sequence",
        pretokenizers: [{ type: "Split", pattern: { Regex: split }, behavior: "Isolated", invert: false },
          { ...byteLevel, use_regex: false }],
      };
    }
    const normalizer = phi3 ? {
      type: "Sequence",
      normalizers: [{ type: "Prepend", prepend: "\u2581" }, { type: "Replace", pattern: { String: " " }, content: "\u2581" }],
    } : null;
    const decoder = model === "gpt2" ? { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true } : {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
        ...(prefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : [])],
    };
    const bos = this.specials.bos_token;
    const eos = this.specials.eos_token;
    // llama.cpp adds BOS to a sentencepiece vocabulary whose file does not say otherwise
    const addBos = Boolean(f["tokenizer.ggml.add_bos_token"] ?? model === "llama") && bos !== undefined;
    const addEos = Boolean(f["tokenizer.ggml.add_eos_token"] ?? false) && eos !== undefined;
    const single = [...(addBos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []), { Sequence: { id: "A", type_id: 0 } },
      ...(addEos ? [{ SpecialToken: { id: eos, type_id: 0 } }] : [])];
    const specialTokens = {};
    for (const [t, on] of [[bos, addBos], [eos, addEos]]) if (on) specialTokens[t] = { id: t, ids: [vocab[t]], tokens: [t] };
    this.backend = new Tokenizer({
      version: "1.0",
      added_tokens: addedTokens,
      normalizer,
      pre_tokenizer: preTokenizer,
      post_processor: { type: "TemplateProcessing", single, pair: single, special_tokens: specialTokens },
      decoder,
      model: model === "gpt2" ? {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
      } : {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
      },
    }, { clean_up_tokenization_spaces: false });
    this.controls = addedTokens.filter((t) => t.special).map((t) => t.content).sort((a, b) => b.length - a.length);
    // The end of a turn: the eos token and the chat models' end-of-turn tokens.
    const unk = this.specials.unk_token;
    this.eosIds = new Set([eos, ...tables.END_OF_TURN].filter((t) => t !== undefined && t in vocab && (t === eos || t !== unk))
      .map((t) => vocab[t]));
    const source = f["tokenizer.chat_template"];
    this.template = typeof source === "string" ? new Template(source) : null;
  }

  encode(text) {
    return this.backend.encode(text).ids;
  }

  decode(ids) {
    // (the library refuses no ids: a reply whose first token ends it is empty)
    return ids.length ? this.backend.decode(ids, { skip_special_tokens: false }) : "";
  }

  // A reply's text as its tokens come, as llaf/generation.py's TextPieces
  // streams it: `push(id)` gives the text that token lets show, "" while the
  // text ends in a partial UTF-8 character (decoded as U+FFFD). Each push
  // decodes a window, the tokens since the one before the last text shown,
  // so a token costs the same however long the reply (decoding the whole
  // reply each token cost in proportion to its length); the window's leading
  // token keeps the decoders that look at the text's start (sentencepiece's
  // strip of a first space) off the new text.
  textStream() {
    const ids = [];
    let start = 0; // the window: ids[start..], of which ids[start..shown] gave the text shown
    let shown = 0;
    return {
      push: (id) => {
        ids.push(id);
        const before = this.decode(ids.slice(start, shown)).length;
        const text = this.decode(ids.slice(start));
        if (text.endsWith("\uFFFD") || text.length <= before) return "";
        [start, shown] = [shown, ids.length];
        return text.slice(before);
      },
    };
  }

  // The ids of a conversation in the chat template, ready for the reply.
  chat(messages) {
    if (!this.template) throw new Error("this model has no chat template");
    for (const m of messages) {
      const control = this.controls.find((c) => m.content.includes(c));
      // llaf's Python side tokenizes such a message as text; the page refuses it.
      if (control) throw new Error(`a message may not contain the control token ${control}`);
    }
    const text = this.template.render({ messages, add_generation_prompt: true, ...this.specials });
    return this.backend.encode(text, { add_special_tokens: false }).ids;
  }
}
