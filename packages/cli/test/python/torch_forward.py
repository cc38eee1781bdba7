"""Independent float64 PyTorch forward passes of the layouts `strata export` writes.

Usage: python3 torch_forward.py FORMAT DIR IDS_JSON  ->  prints the logits [batch, seq, vocab] as JSON.

Each forward reads only DIR/config.json and DIR/model.safetensors (parsed by hand: 8-byte header length,
JSON header, raw little-endian data) and computes the function of the PyTorch code that defines the format:
transformers' GPT2LMHeadModel and LlamaForCausalLM, torchscale's Decoder/Encoder, NVIDIA's nGPT model.py
(with rotate-half RoPE, NVIDIA/ngpt issue #10). Nothing is shared with Strata's TypeScript.
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def load(d):
    with open(f"{d}/model.safetensors", "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        buf = bytearray(raw[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=DT[t["dtype"]]).reshape(t["shape"]).double()
    with open(f"{d}/config.json") as f:
        cfg = json.load(f)
    return cfg, out


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def causal_attention(q, k, v, heads, scale, causal=True, pad=None):
    B, T, d = q.shape
    hd = d // heads
    q, k, v = (t.view(B, T, heads, hd).transpose(1, 2) for t in (q, k, v))
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    if pad is not None:
        s = s.masked_fill(pad[:, None, None, :], float("-inf"))
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)


def gpt2(cfg, W, ids):
    p = "transformer." if "transformer.wte.weight" in W else ""
    eps = cfg["layer_norm_epsilon"]
    act = {"gelu_new": lambda x: F.gelu(x, approximate="tanh"), "gelu": F.gelu, "relu": F.relu}[
        cfg["activation_function"]
    ]
    T = ids.shape[1]
    x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][:T]
    d = cfg["n_embd"]
    for i in range(cfg["n_layer"]):
        h = f"{p}h.{i}."
        a = layer_norm(x, W[h + "ln_1.weight"], W[h + "ln_1.bias"], eps)
        qkv = a @ W[h + "attn.c_attn.weight"] + W[h + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, -1)
        y = causal_attention(q, k, v, cfg["n_head"], 1 / math.sqrt(d // cfg["n_head"]))
        x = x + y @ W[h + "attn.c_proj.weight"] + W[h + "attn.c_proj.bias"]
        m = layer_norm(x, W[h + "ln_2.weight"], W[h + "ln_2.bias"], eps)
        m = act(m @ W[h + "mlp.c_fc.weight"] + W[h + "mlp.c_fc.bias"])
        x = x + m @ W[h + "mlp.c_proj.weight"] + W[h + "mlp.c_proj.bias"]
    x = layer_norm(x, W[p + "ln_f.weight"], W[p + "ln_f.bias"], eps)
    head = W[p + "wte.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat((-x2, x1), -1)


def rope(x, heads, theta):
    # transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb, on [B, T, heads*hd]
    B, T, d = x.shape
    hd = d // heads
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    f = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat((f, f), -1)
    xh = x.view(B, T, heads, hd)
    out = xh * emb.cos()[None, :, None, :] + rotate_half(xh) * emb.sin()[None, :, None, :]
    return out.reshape(B, T, d)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def llama(cfg, W, ids):
    eps, H, theta = cfg["rms_norm_eps"], cfg["num_attention_heads"], cfg["rope_theta"]
    x = W["model.embed_tokens.weight"][ids]
    d = cfg["hidden_size"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = rope(a @ W[p + "self_attn.q_proj.weight"].T, H, theta)
        k = rope(a @ W[p + "self_attn.k_proj.weight"].T, H, theta)
        v = a @ W[p + "self_attn.v_proj.weight"].T
        y = causal_attention(q, k, v, H, 1 / math.sqrt(d // H))
        x = x + y @ W[p + "self_attn.o_proj.weight"].T
        m = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(m @ W[p + "mlp.gate_proj.weight"].T) * (m @ W[p + "mlp.up_proj.weight"].T)
        x = x + g @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T


def torchscale(cfg, W, ids):
    c = cfg["config"]
    cls = cfg["torchscale_class"]
    # torchscale's config defaults and postprocessing() (it sets encoder_normalize_before only)
    deepnorm, subln = c.get("deepnorm", False), c.get("subln", True)
    before = {s: c.get(f"{s}_normalize_before", True) for s in ("encoder", "decoder")}
    if deepnorm:
        subln = False
        before["encoder"] = False
    if subln:
        deepnorm = False
        before["encoder"] = True
    eps = c.get("layernorm_eps", 1e-5)
    act = F.gelu if c.get("activation_fn", "gelu") == "gelu" else F.relu
    N, M = c.get("encoder_layers", 0), c.get("decoder_layers", 0)
    if not deepnorm:
        alpha = {"encoder": 1.0, "decoder": 1.0}
    elif cls == "EncoderDecoder":  # encoder.py / decoder.py, is_encoder_decoder=True
        alpha = {"encoder": math.pow(math.pow(N, 4) * M, 0.0625) * 0.81, "decoder": math.pow(3.0 * M, 0.25)}
    else:
        alpha = {"encoder": math.pow(2.0 * N, 0.25), "decoder": math.pow(2.0 * M, 0.25)}
    lin = lambda t, n: t @ W[n + ".weight"].T + W[n + ".bias"]  # noqa: E731
    ln = lambda t, n: layer_norm(t, W[n + ".weight"], W[n + ".bias"], eps)  # noqa: E731

    def embed(prefix, toks, positions):
        scale = 1.0 if c.get("no_scale_embedding", True) else math.sqrt(W[prefix + "embed_tokens.weight"].shape[1])
        x = scale * W[prefix + "embed_tokens.weight"][toks]
        if positions:  # PositionalEmbedding: fairseq's offset of 2
            x = x + W[prefix + "embed_positions.weight"][torch.arange(2, toks.shape[1] + 2)]
        return x

    def run(prefix, stack, x, layers, pad=None, memory=None, mem_pad=None):
        b, a, H = before[stack], alpha[stack], c[f"{stack}_attention_heads"]
        for i in range(layers):
            p = f"{prefix}layers.{i}."
            r = x
            if b:
                x = ln(x, p + "self_attn_layer_norm")
            q, k, v = (lin(x, p + f"self_attn.{n}_proj") for n in "qkv")
            y = causal_attention(q, k, v, H, (q.shape[-1] // H) ** -0.5, causal=stack == "decoder", pad=pad)
            if subln:
                y = ln(y, p + "self_attn.inner_attn_ln")
            x = r * a + lin(y, p + "self_attn.out_proj")
            if not b:
                x = ln(x, p + "self_attn_layer_norm")
            if memory is not None:
                r = x
                if b:
                    x = ln(x, p + "encoder_attn_layer_norm")
                q = lin(x, p + "encoder_attn.q_proj")
                k, v = lin(memory, p + "encoder_attn.k_proj"), lin(memory, p + "encoder_attn.v_proj")
                y = cross_attention(q, k, v, H, mem_pad)
                x = r * a + lin(y, p + "encoder_attn.out_proj")
                if not b:
                    x = ln(x, p + "encoder_attn_layer_norm")
            r = x
            if b:
                x = ln(x, p + "final_layer_norm")
            h = act(lin(x, p + "ffn.fc1"))
            if subln:
                h = ln(h, p + "ffn.ffn_layernorm")
            x = r * a + lin(h, p + "ffn.fc2")
            if not b:
                x = ln(x, p + "final_layer_norm")
        if b and (stack == "decoder" or c.get("normalize_output", True)):
            x = ln(x, prefix + "layer_norm")
        return x

    pos = cfg.get("embed_positions")
    pad_id = cfg.get("pad_token_id")
    if cls == "EncoderDecoder":
        S = pos["encoder"]["num_embeddings"] - 2 if pos else c["max_source_positions"]
        src, tgt = ids[:, :S], ids[:, S:]
        mem_pad = src.eq(pad_id)
        memory = run("encoder.", "encoder", embed("encoder.", src, pos), N, pad=mem_pad)
        x = run("decoder.", "decoder", embed("decoder.", tgt, pos), M, memory=memory, mem_pad=mem_pad)
        return x @ W["decoder.output_projection.weight"].T
    if cls == "Encoder":
        pad = ids.eq(pad_id) if pad_id is not None else None
        x = run("", "encoder", embed("", ids, pos), N, pad=pad)
    else:
        x = run("", "decoder", embed("", ids, pos), M)
    return x @ W["output_projection.weight"].T


def cross_attention(q, k, v, heads, mem_pad):
    B, T, d = q.shape
    S = k.shape[1]
    hd = d // heads
    q = q.view(B, T, heads, hd).transpose(1, 2)
    k, v = (t.view(B, S, heads, hd).transpose(1, 2) for t in (k, v))
    s = (q @ k.transpose(-1, -2)) * hd**-0.5
    s = s.masked_fill(mem_pad[:, None, None, :], float("-inf"))
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)


def ngpt(cfg, W, ids):
    d, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    bs = cfg["base_scale"]
    norm = lambda t: t / t.norm(p=2, dim=-1, keepdim=True)  # noqa: E731  NVIDIA's justnorm
    B, T = ids.shape
    hd = d // H
    h = W["transformer.wte.weight"][ids]
    for i in range(L):
        p = f"transformer.h.{i}."
        q = rope(h @ W[p + "query.weight"].T, H, 10000.0).view(B, T, H, hd)
        k = rope(h @ W[p + "key.weight"].T, H, 10000.0).view(B, T, H, hd)
        v = (h @ W[p + "value.weight"].T).view(B, T, H, hd)
        sqk = (W[p + "sqk"] * (1.0 / bs)).view(1, 1, H, hd)
        q, k = sqk * norm(q), sqk * norm(k)
        y = causal_attention(q.reshape(B, T, d), k.reshape(B, T, d), v.reshape(B, T, d), H, math.sqrt(hd))
        h_att = y @ W[p + "att_c_proj.weight"].T
        lr = (W[p + "attn_alpha"] * (0.05 / bs)).abs()
        A, Bn = norm(h), norm(h_att)
        h = norm(A + lr * (Bn - A))
        uv = h @ W[p + "c_fc.weight"].T
        uv = (W[p + "suv"] * math.sqrt(d)) * uv
        u, nu = uv.chunk(2, -1)
        h_mlp = (u * F.silu(nu)) @ W[p + "mlp_c_proj.weight"].T
        lr = (W[p + "mlp_alpha"] * (0.05 / bs)).abs()
        A, Bn = norm(h), norm(h_mlp)
        h = norm(A + lr * (Bn - A))
    return (W["sz"] * (1.0 / bs)) * (h @ W["lm_head.weight"].T)


if __name__ == "__main__":
    fmt, d, ids = sys.argv[1], sys.argv[2], torch.tensor(json.loads(sys.argv[3]))
    cfg, W = load(d)
    with torch.no_grad():
        logits = {"hf-gpt2": gpt2, "hf-llama": llama, "torchscale": torchscale, "ngpt": ngpt}[fmt](cfg, W, ids)
    print(json.dumps(logits.tolist()))
