// A GGUF file's tokenizer and chat template, as llaf/tokenizer.py builds
// them for Python (and transformers for its GGUF loader): the file's
// vocabulary and merges as a byte-level BPE tokenizer.json, run by
// @huggingface/tokenizers (transformers.js's tokenizers), and its chat
// template rendered by @huggingface/jinja.

import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import tables from "llaf-tables";
import { GGUFError } from "./gguf.js";

const CONTROL = 3; // llama.cpp's token type of control tokens (<|im_start|>, ...)
const USER_DEFINED = 4;

const added = (id, content, special) =>
  ({ id, content, special, single_word: false, lstrip: false, rstrip: false, normalized: false });

export class ModelTokenizer {
  constructor(g) {
    const f = g.fields;
    if (f["tokenizer.ggml.model"] !== "gpt2") {
      throw new GGUFError(`${g.name}: the browser builds byte-level BPE (gpt2) tokenizers; ` +
        `this file's is ${f["tokenizer.ggml.model"]}`);
    }
    const tokens = f["tokenizer.ggml.tokens"];
    const merges = f["tokenizer.ggml.merges"];
    if (!Array.isArray(tokens) || !Array.isArray(merges)) throw new GGUFError(`${g.name}: GGUF metadata lacks its tokenizer`);
    const vocab = {};
    tokens.forEach((t, i) => { vocab[t] = i; });
    const kinds = f["tokenizer.ggml.token_type"] ?? [];
    // GPT2Tokenizer's default bos/eos/unk, the control tokens whole and
    // special, user-defined ones whole (llaf/tokenizer.py `_gguf_backend`).
    const addedTokens = [];
    const seen = new Set();
    const add = (id, special) => {
      if (id !== undefined && !seen.has(id)) { seen.add(id); addedTokens.push(added(id, tokens[id], special)); }
    };
    add(vocab["<|endoftext|>"], true);
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
    const split = tables.PRE_TOKENIZER_SPLITS[f["tokenizer.ggml.pre"] ?? ""];
    const preTokenizer = split === undefined ? byteLevel : {
      type: "Sequence",
      pretokenizers: [{ type: "Split", pattern: { Regex: split }, behavior: "Isolated", invert: false },
        { ...byteLevel, use_regex: false }],
    };
    const bos = this.specials.bos_token;
    const eos = this.specials.eos_token;
    const addBos = Boolean(f["tokenizer.ggml.add_bos_token"] ?? false) && bos !== undefined;
    const addEos = Boolean(f["tokenizer.ggml.add_eos_token"] ?? false) && eos !== undefined;
    const single = [...(addBos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []), { Sequence: { id: "A", type_id: 0 } },
      ...(addEos ? [{ SpecialToken: { id: eos, type_id: 0 } }] : [])];
    const specialTokens = {};
    for (const [t, on] of [[bos, addBos], [eos, addEos]]) if (on) specialTokens[t] = { id: t, ids: [vocab[t]], tokens: [t] };
    this.backend = new Tokenizer({
      version: "1.0",
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: preTokenizer,
      post_processor: { type: "TemplateProcessing", single, pair: single, special_tokens: specialTokens },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
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
