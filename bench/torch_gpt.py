#!/usr/bin/env python3
"""PyTorch reference for `strata bench --pytorch`: the same GPT as Strata's benchmark, trained the same way.

Architecture: byte vocabulary (256), learned positions, tied embedding/head, biases, GELU (tanh), fused QKV,
causal softmax attention written out (no fused SDPA), MLP 4·d, LayerNorm eps 1e-5; either Pre-LN with a final
LayerNorm (`--norm pre-ln`, GPT-2) or DeepNorm (`--norm deepnorm`: x <- LN(alpha*x + G(x)), alpha = (2N)^(1/4),
Xavier-normal init with gain beta = (8N)^(-1/4) on v/out/ffn, no final norm). AdamW (lr 1e-3, betas 0.9/0.95,
weight decay 0.1), global-norm clipping at 1, random byte batches.

Run it the way the measurements in shared/reference/backends.md were taken (best setting on 2 cores):
    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 python3 bench/torch_gpt.py --layers 4 ...
It sets torch.set_num_threads(1) itself. Prints one JSON line: {"msPerStep", "cpuMsPerStep", "tokensPerSec",
"peakRssMB"} (medians over the timed steps).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, norm, alpha):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)
        self.heads = heads
        self.norm = norm
        self.alpha = alpha

    def attn(self, x, mask):
        B, T, d = x.shape
        H = self.heads
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(B, T, H, d // H).transpose(1, 2)
        k = k.view(B, T, H, d // H).transpose(1, 2)
        v = v.view(B, T, H, d // H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // H)) + mask
        y = F.softmax(att, dim=-1) @ v
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, d))

    def mlp(self, x):
        return self.out(F.gelu(self.fc(x), approximate="tanh"))

    def forward(self, x, mask):
        if self.norm == "deepnorm":
            x = self.ln1(self.alpha * x + self.attn(x, mask))
            return self.ln2(self.alpha * x + self.mlp(x))
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, d, layers, heads, ctx, norm):
        super().__init__()
        self.tok = nn.Embedding(256, d)
        self.pos = nn.Embedding(ctx, d)
        alpha = (2 * layers) ** 0.25
        beta = (8 * layers) ** -0.25
        self.blocks = nn.ModuleList([Block(d, heads, norm, alpha) for _ in range(layers)])
        self.final = nn.LayerNorm(d, eps=1e-5) if norm != "deepnorm" else None
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        if norm == "deepnorm":
            for b in self.blocks:
                nn.init.xavier_normal_(b.qkv.weight[:d], gain=1)
                nn.init.xavier_normal_(b.qkv.weight[d : 2 * d], gain=1)
                nn.init.xavier_normal_(b.qkv.weight[2 * d :], gain=beta)
                for lin in (b.proj, b.fc, b.out):
                    nn.init.xavier_normal_(lin.weight, gain=beta)
        self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), -1e9), diagonal=1))

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.mask[:T, :T])
        if self.final is not None:
            x = self.final(x)
        return x @ self.tok.weight.t()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--norm", choices=["pre-ln", "deepnorm"], default="pre-ln")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = GPT(a.d_model, a.layers, a.heads, a.context, a.norm)
    decay = [q for n, q in model.named_parameters() if q.dim() >= 2 and not n.startswith(("tok", "pos"))]
    other = [q for n, q in model.named_parameters() if not (q.dim() >= 2 and not n.startswith(("tok", "pos")))]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95)
    )
    g = torch.Generator().manual_seed(7)

    def step():
        x = torch.randint(0, 256, (a.batch_size, a.context), generator=g)
        y = torch.randint(0, 256, (a.batch_size, a.context), generator=g)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, 256), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    times = []
    cpu = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    ms = 1000 * times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "msPerStep": ms,
                "cpuMsPerStep": 1000 * cpu[len(cpu) // 2],
                "tokensPerSec": a.batch_size * a.context * 1000 / ms,
                "peakRssMB": rss,
            }
        )
    )


if __name__ == "__main__":
    main()
