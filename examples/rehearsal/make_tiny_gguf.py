"""Writes a tiny random-weight llama-architecture GGUF (about 0.5 MB) that llama.cpp loads and
serves: 2 layers, 64-wide embeddings, 4 heads, a SentencePiece-style vocabulary (unknown,
begin/end, the 256 byte tokens and a few words) and a chat template. Its answers are gibberish;
what matters is that a real inference server streams real tokens from it.

Usage: make_tiny_gguf.py OUT.gguf
"""

import sys

import numpy as np
from gguf import GGUFWriter, TokenType

N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 64, 2, 4, 128, 256
WORDS = ["hello", "world", "the", "a", "model", "local", "token", "data", "air", "gap", "llama", "kube"]
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def vocab():
    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(TokenType.BYTE)
    for i, w in enumerate(WORDS):
        for piece in (w, "\u2581" + w):
            tokens.append(piece)
            scores.append(-float(i))
            types.append(TokenType.NORMAL)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        if "\u2581" + ch not in tokens:
            tokens.append("\u2581" + ch)
            scores.append(-100.0)
            types.append(TokenType.NORMAL)
    assert len(set(tokens)) == len(tokens), "llama.cpp refuses a vocabulary with duplicates"
    return tokens, scores, types


def main(out):
    rng = np.random.default_rng(7)
    w = lambda *shape: (rng.standard_normal(shape) * 0.02).astype(np.float32)
    tokens, scores, types = vocab()
    writer = GGUFWriter(out, "llama")
    writer.add_name("llmkube-tiny-random")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all f32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(TEMPLATE)
    n_vocab = len(tokens)
    # numpy shapes are ggml's dimensions reversed: (rows, columns) = (out, in).
    writer.add_tensor("token_embd.weight", w(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", w(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", w(N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w(N_FF, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", w(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1])
