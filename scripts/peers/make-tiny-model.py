"""Writes a tiny llama-architecture GGUF with random weights, for the real-peer tests.

Ollama imports it (`ollama create NAME -f Modelfile` with `FROM ./file.gguf`) and serves it with
its own runner, so streaming, /api/tags digests, errors and timings are Ollama's, with no model
download. The answers are nonsense by design, but deterministic under greedy sampling: the output
rows of the control and byte tokens are zero while word rows are large, so the argmax is always a
printable word and the end-of-sequence token never wins (generation runs to num_predict).

Usage: python make-tiny-model.py OUT.gguf SEED
Needs the `gguf` and `numpy` packages (scripts/peers/install-gguf.sh).
"""

import sys

import numpy as np
from gguf import GGUFWriter, TokenType

N_EMBD = 32
N_HEAD = 4
N_LAYER = 2
N_FF = 64
N_CTX = 8192

WORDS = (
    "attested tiny model says hello from the enclave quote verified token stream answer "
    "random weights measured proxy browser socket upload chat ollama open webui confidential "
    "trusted domain report data nonce digest signature collateral platform policy secure"
).split()


def vocabulary():
    """SentencePiece-style vocabulary: unk, bos, eos, the 256 byte tokens, then words."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    words = ["\u2581" + w for w in WORDS]
    tokens += words
    types += [TokenType.NORMAL] * len(words)
    # Higher score = merged first by the SentencePiece tokenizer; only words have real scores.
    scores = [0.0] * (len(tokens) - len(words)) + [-float(i) for i in range(len(words))]
    return tokens, types, scores


def main(out, seed):
    rng = np.random.default_rng(seed)
    tokens, types, scores = vocabulary()
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    def rand(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = GGUFWriter(out, "llama")
    w.add_name(f"ratls-tiny-{seed}")
    w.add_file_type(0)  # all F32
    w.add_vocab_size(n_vocab)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    # numpy shapes are (rows, columns) = GGUF's dimensions reversed.
    w.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD, scale=1.0))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    output = rand(n_vocab, N_EMBD, scale=4.0)
    first_word = n_vocab - len(WORDS)
    output[:first_word] = 0.0
    w.add_tensor("output.weight", output)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(N_HEAD * head_dim, N_EMBD))
        w.add_tensor(p + "attn_k.weight", rand(N_HEAD * head_dim, N_EMBD))
        w.add_tensor(p + "attn_v.weight", rand(N_HEAD * head_dim, N_EMBD))
        w.add_tensor(p + "attn_output.weight", rand(N_EMBD, N_HEAD * head_dim))
        w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", rand(N_EMBD, N_FF))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make-tiny-model.py OUT.gguf SEED")
    main(sys.argv[1], int(sys.argv[2]))
