#!/usr/bin/env python3
"""hf_bench.py: the Hugging Face reference for `lavascope bench`.

It times the rows of lavascope's benchmark with transformers + PyTorch on a
randomly initialised CLIPModel of the same configuration (vit-b-32,
vit-b-16, vit-l-14, vit-l-14-336 or tiny)
and the same synthetic inputs (random pixels; texts of --tokens ids between
the start and end ids, the length of the paper's linearized tree), and prints
the same records (--json: one object per line, the fields of Go's
bench.Record), so that `lavascope bench compare` can put both side by side.

Variants:
  hf-default  what the reference notebook and a plain training loop do:
              eager attention, fp32, torch.optim.AdamW with its defaults
              (foreach on CUDA, a loop over the tensors on the CPU), texts
              padded to the context (77), as clip.tokenize pads them.
  hf-best     the fastest configuration a PyTorch user can switch on: SDPA
              attention, TF32 matmuls (set_float32_matmul_precision("high")),
              fused AdamW where torch has it for the device (CUDA, the CPU
              from torch 2.4; the record says which AdamW ran), texts padded
              to the longest in the batch (as lavascope pads them).
              Relevance has no such variant: it needs the attention
              probabilities, which only eager attention gives.

Relevance follows the Transformer-MM-Explainability CLIP notebook
(interpret()): one forward pass keeping each layer's attention
probabilities, the one-hot sum of the diagonal logits, then for every layer
from the start layer on one torch.autograd.grad of that sum with respect to
the layer's probabilities, cam = mean over heads of clamp(grad * attn, 0),
R = R + cam @ R; both encoders; the relevance rows read back to the host.

Training is the step `lavascope train` takes: forward with the contrastive
loss (return_loss=True), backward, gradient clipping (--clip-grad, 0: none),
AdamW (lr 1e-5, betas 0.9/0.98, eps 1e-6, weight decay 0.2), zero_grad, the
clamp of logit_scale to [0, ln 100], the loss read back.

Needs torch and transformers (no network: the model is built from a config).
--dry-run prints the plan without importing either.
"""

import argparse
import json
import math
import os
import sys
import time

TITLES = {
    "explain-last": "relevance, one pair, last layer only",
    "explain-all": "relevance, one pair, all layers",
    "score": "scoring one pair (forward only)",
}

# The context width and the configurations, as lavascope's
# model.NamedConfig has them.
CONTEXT = 77
CONFIGS = {
    "vit-b-32": dict(
        text=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=8, max_position_embeddings=CONTEXT, bos_token_id=0, eos_token_id=2,
                  pad_token_id=1),
        vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    image_size=224, patch_size=32),
        projection_dim=512,
    ),
    "vit-b-16": dict(
        text=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=8, max_position_embeddings=CONTEXT, bos_token_id=0, eos_token_id=2,
                  pad_token_id=1),
        vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    image_size=224, patch_size=16),
        projection_dim=512,
    ),
    "vit-l-14": dict(
        text=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, max_position_embeddings=CONTEXT, bos_token_id=0, eos_token_id=2,
                  pad_token_id=1),
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=224, patch_size=14),
        projection_dim=768,
    ),
    "tiny": dict(
        text=dict(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=CONTEXT, bos_token_id=49406,
                  eos_token_id=49407, pad_token_id=1),
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    image_size=224, patch_size=32),
        projection_dim=32,
    ),
}

# ViT-L/14 at 336 pixels: the same model with a 24×24 patch grid.
CONFIGS["vit-l-14-336"] = dict(CONFIGS["vit-l-14"], vision=dict(CONFIGS["vit-l-14"]["vision"], image_size=336))


def special_ids(text):
    """bos, eos, pad of a synthetic text: bench.SpecialIDs in Go."""
    if text["eos_token_id"] == 2:  # legacy: pooled at argmax, clip.tokenize's zero padding
        return text["vocab_size"] - 2, text["vocab_size"] - 1, 0
    return text["bos_token_id"], text["eos_token_id"], text["pad_token_id"]


def pairs_of(n):
    """bench.pairsOf in Go: the titles must match."""
    return "1 pair" if n == 1 else "%d pairs" % n


def work_rows(args):
    """The rows to run, in lavascope's order, as (id, title, kind, pairs, all_layers)."""
    rows = []
    if "explain" in args.work:
        rows += [
            ("explain-last", TITLES["explain-last"], "explain", 1, False),
            ("explain-all", TITLES["explain-all"], "explain", 1, True),
            ("explain-batch", "relevance, %s batched, all layers" % pairs_of(args.pairs), "explain", args.pairs, True),
        ]
    if "score" in args.work:
        rows.append(("score", TITLES["score"], "score", 1, False))
    if "train" in args.work:
        for k in args.batch_pairs:
            rows.append(("train-%d" % (2 * k), "training, %d items (%s) per step" % (2 * k, pairs_of(k)), "train", k, False))
    return rows


def variants_for(kind, variants):
    # Relevance needs the attention probabilities: eager only.
    return [v for v in variants if kind != "explain" or v == "default"]


def quantile(sorted_ms, q):
    pos = q * (len(sorted_ms) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def stats(rec, times_s):
    ms = sorted(t * 1000.0 for t in times_s)
    rec["repeat"] = len(ms)
    rec["min_ms"], rec["max_ms"] = ms[0], ms[-1]
    rec["q1_ms"], rec["median_ms"], rec["q3_ms"] = quantile(ms, 0.25), quantile(ms, 0.5), quantile(ms, 0.75)
    rec["items_per_s"] = rec["items"] / (rec["median_ms"] / 1000.0) if rec["median_ms"] > 0 else 0.0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name":
                    return v.strip()
    except OSError:
        pass
    return "cpu"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit-b-32", choices=sorted(CONFIGS), help="model configuration")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto: cuda when present)")
    p.add_argument("--work", default="explain,score,train",
                   help="comma-separated rows to run: explain, score, train (default all)")
    p.add_argument("--variants", default="default,best", help="comma-separated: default, best")
    p.add_argument("--pairs", type=int, default=101, help="pairs of the batched relevance row")
    p.add_argument("--batch-pairs", default="2,32", help="pairs per training step, one row each")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing each row")
    p.add_argument("--repeat", type=int, default=10, help="timed runs of each row")
    p.add_argument("--tokens", type=int, default=56, help="ids per synthetic text between its start and end")
    p.add_argument("--seed", type=int, default=1, help="seed of the weights and inputs")
    p.add_argument("--clip-grad", type=float, default=1.0, help="gradient clipping norm of a training step (0: off)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--json", action="store_true", help="print one JSON record per row")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit (imports neither torch nor transformers)")
    args = p.parse_args(argv)
    args.work = [w.strip() for w in args.work.split(",") if w.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        args.batch_pairs = [int(k) for k in args.batch_pairs.split(",") if k.strip()]
    except ValueError:
        p.error("--batch-pairs %r: want comma-separated integers" % args.batch_pairs)
    bad = [w for w in args.work if w not in ("explain", "score", "train")]
    if bad:
        p.error("--work: unknown %s (want explain, score, train)" % ", ".join(bad))
    bad = [v for v in args.variants if v not in ("default", "best")]
    if bad:
        p.error("--variants: unknown %s (want default, best)" % ", ".join(bad))
    if args.pairs < 1 or any(k < 1 for k in args.batch_pairs):
        p.error("--pairs and --batch-pairs must be at least 1")
    if args.repeat < 1 or args.warmup < 0 or args.tokens < 1 or args.clip_grad < 0:
        p.error("--repeat must be >= 1, --warmup >= 0, --tokens >= 1, --clip-grad >= 0")
    if args.tokens + 2 > CONTEXT:
        p.error("--tokens %d: the texts and their start and end do not fit %d positions" % (args.tokens, CONTEXT))
    return args


def dry_run(args):
    c = CONFIGS[args.config]
    bos, eos, pad = special_ids(c["text"])
    print("config %s: vision %s, text %s, projection %d" % (args.config, c["vision"], c["text"], c["projection_dim"]))
    print("texts: bos %d, %d ids, eos %d, padded with %d to %d (default) or %d (best)"
          % (bos, args.tokens, eos, pad, CONTEXT, args.tokens + 2))
    print("warm-up %d, repeat %d, device %s" % (args.warmup, args.repeat, args.device))
    for wid, title, kind, pairs, _ in work_rows(args):
        for v in variants_for(kind, args.variants):
            print("  hf-%-8s %-14s %s: %d images, %d texts" % (v, wid, title, 2 * pairs, 2 * pairs))


class Bench:
    """The model, the inputs and the timing loop, for one device."""

    def __init__(self, args):
        import torch
        import transformers
        from transformers import CLIPConfig, CLIPModel

        self.torch = torch
        self.args = args
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        dev = args.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            if dev == "cpu":
                print("device auto: torch sees no GPU; running on the CPU", file=sys.stderr)
        self.dev = torch.device(dev)
        if self.dev.type == "cuda" and self.dev.index is None:
            self.dev = torch.device("cuda", torch.cuda.current_device())
        self.cuda = self.dev.type == "cuda"
        c = CONFIGS[args.config]
        self.text = c["text"]
        cfg = CLIPConfig(text_config=dict(c["text"]), vision_config=dict(c["vision"]),
                         projection_dim=c["projection_dim"])
        torch.manual_seed(args.seed)
        self.model = CLIPModel._from_config(cfg, attn_implementation="eager").to(self.dev)
        self.impl = None
        self.base = {
            "config": args.config,
            "device": "cuda:%d" % self.dev.index if self.cuda else "cpu",
            "device_name": torch.cuda.get_device_name(self.dev) if self.cuda else cpu_name(),
            "dtype": "f32",
            "tree_tokens": args.tokens,
            "warmup": args.warmup,
            "threads": torch.get_num_threads(),
            "versions": "torch %s, transformers %s" % (torch.__version__, transformers.__version__),
        }
        # The attention modules, vision first, each keeping its last
        # probabilities through a forward hook (the notebook's attn_probs).
        self.attn = {"vision": [], "text": []}
        self.captured = {}
        self.capture = False
        for side, enc in (("vision", self.model.vision_model.encoder), ("text", self.model.text_model.encoder)):
            for layer in enc.layers:
                self.attn[side].append(layer.self_attn)
                layer.self_attn.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        # Only while explaining: a kept probability keeps its graph alive.
        if self.capture and isinstance(output, tuple) and len(output) > 1:
            self.captured[module] = output[1]

    def set_attention(self, impl):
        """Switches every attention module between eager and sdpa."""
        if impl == self.impl:
            return
        if hasattr(self.model, "set_attn_implementation"):
            try:
                self.model.set_attn_implementation(impl)
            except (ValueError, TypeError, AttributeError, NotImplementedError) as e:
                print("hf_bench: set_attn_implementation(%r): %s; setting the attention modules' configs" % (impl, e),
                      file=sys.stderr)
        # Every CLIPAttention reads its config's _attn_implementation at each
        # call; make sure all of them (and so their encoders) switched.
        for mods in self.attn.values():
            for m in mods:
                if getattr(m.config, "_attn_implementation", None) != impl:
                    m.config._attn_implementation = impl
        self.impl = impl

    def set_tf32(self, on):
        self.torch.set_float32_matmul_precision("high" if on else "highest")

    def precision(self):
        """What set_tf32(True) means on this device, for the records."""
        return "tf32 matmul" if self.cuda else "float32 matmul precision high"

    def inputs(self, items, width):
        """Random pixels and token ids: bench.TokenIDs draws its ids with Go's
        PCG, so the values differ, the shapes and the special ids do not."""
        torch = self.torch
        g = torch.Generator().manual_seed(self.args.seed)
        v = CONFIGS[self.args.config]["vision"]
        px = torch.randn(items, 3, v["image_size"], v["image_size"], generator=g).to(self.dev)
        bos, eos, pad = special_ids(self.text)
        limit = min(bos, eos, self.text["vocab_size"])
        ids = torch.full((items, width), pad, dtype=torch.long)
        ids[:, 0] = bos
        ids[:, 1:self.args.tokens + 1] = torch.randint(1, limit, (items, self.args.tokens), generator=g)
        ids[:, self.args.tokens + 1] = eos
        return px, ids.to(self.dev)

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.dev)

    def time_row(self, rec, fn):
        torch = self.torch
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.dev)
        for _ in range(self.args.warmup):
            fn()
        times = []
        for _ in range(self.args.repeat):
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        stats(rec, times)
        rec["peak_mem_bytes"] = int(torch.cuda.max_memory_allocated(self.dev)) if self.cuda else None

    # --- the work ------------------------------------------------------------

    def relevance(self, px, ids, start_all):
        """The notebook's interpret(): one autograd.grad per layer."""
        torch = self.torch
        self.capture = True
        try:
            return self._relevance(px, ids, start_all)
        finally:
            self.capture = False
            self.captured.clear()

    def _relevance(self, px, ids, start_all):
        torch = self.torch
        out = self.model(input_ids=ids, pixel_values=px, output_attentions=True)
        logits = out.logits_per_image
        b = logits.shape[0]
        one_hot = torch.zeros_like(logits)
        one_hot[torch.arange(b), torch.arange(b)] = 1
        one_hot = torch.sum(one_hot * logits)
        self.model.zero_grad()
        rows = []
        for side in ("vision", "text"):
            probs = [self.captured.get(m) for m in self.attn[side]]
            if any(p is None for p in probs):
                raise RuntimeError("the %s attention modules returned no probabilities (is attention eager?)" % side)
            n = probs[0].shape[-1]
            start = 0 if start_all else len(probs) - 1
            R = torch.eye(n, n, dtype=probs[0].dtype, device=probs[0].device)
            R = R.unsqueeze(0).expand(b, n, n)
            for i, a in enumerate(probs):
                if i < start:
                    continue
                grad = torch.autograd.grad(one_hot, [a], retain_graph=True)[0].detach()
                cam = a.detach().reshape(-1, n, n)
                grad = grad.reshape(-1, n, n)
                cam = (grad * cam).reshape(b, -1, n, n)
                cam = cam.clamp(min=0).mean(dim=1)
                R = R + torch.bmm(cam, R)
            if side == "vision":
                rows.append(R[:, 0, 1:])
            else:
                eot = ids.argmax(dim=-1) if self.text["eos_token_id"] == 2 else \
                    (ids == self.text["eos_token_id"]).int().argmax(dim=-1)
                rows.append(R[torch.arange(b, device=R.device), eot])
        return [r.cpu() for r in rows]

    def score(self, px, ids):
        with self.torch.no_grad():
            return self.model(input_ids=ids, pixel_values=px).logits_per_image.cpu()

    def train_step_fn(self, px, ids, fused):
        """The training step and its optimizer; fused asks for the fused
        AdamW, which torch refuses where it has none for the device (the CPU
        before torch 2.4): the default AdamW then runs, and the optimizer's
        "fused" default says which it was."""
        torch = self.torch
        model = self.model
        params = list(model.parameters())
        kw = dict(lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
        opt = None
        if fused:
            try:
                opt = torch.optim.AdamW(params, fused=True, **kw)
            except RuntimeError as e:
                print("hf_bench: fused AdamW on %s: %s; the default AdamW runs" % (self.dev, e), file=sys.stderr)
        if opt is None:
            opt = torch.optim.AdamW(params, **kw)
        clip = self.args.clip_grad
        top = math.log(100)

        def step():
            out = model(input_ids=ids, pixel_values=px, return_loss=True)
            out.loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                model.logit_scale.clamp_(0, top)
            return out.loss.item()

        return step, opt

    def run(self, emit):
        args = self.args
        for wid, title, kind, pairs, all_layers in work_rows(args):
            for variant in variants_for(kind, args.variants):
                best = variant == "best"
                items = 2 * pairs
                width = args.tokens + 2 if best else CONTEXT
                rec = {"impl": "hf-" + variant, "work": wid, "title": title}
                rec.update(self.base)
                rec.update(pairs=pairs, items=items, text_len=width)
                self.set_attention("sdpa" if best else "eager")
                self.set_tf32(best)
                px, ids = self.inputs(items, width)
                if kind == "explain":
                    self.model.eval()
                    rec["options"] = "eager attention, fp32, notebook rule: one autograd.grad per layer (%s)" % (
                        "all layers" if all_layers else "last layer")
                    self.time_row(rec, lambda: self.relevance(px, ids, all_layers))
                elif kind == "score":
                    self.model.eval()
                    rec["options"] = ("sdpa attention, %s, no grad, texts padded to the longest" % self.precision() if best
                                      else "eager attention, fp32, no grad, texts padded to 77")
                    self.time_row(rec, lambda: self.score(px, ids))
                else:
                    self.model.train()
                    step, opt = self.train_step_fn(px, ids, fused=best)
                    clip = "clip %g" % args.clip_grad if args.clip_grad > 0 else "no clipping"
                    adamw = "fused AdamW" if opt.defaults.get("fused") else "AdamW (torch default)"
                    rec["options"] = ("sdpa attention, %s, %s, %s, texts padded to the longest" % (self.precision(), adamw, clip)
                                      if best else "eager attention, fp32, %s, %s, texts padded to 77" % (adamw, clip))
                    self.time_row(rec, step)
                    # Free the optimizer state before the next row's peak.
                    del step, opt
                    self.model.zero_grad(set_to_none=True)
                emit(rec)
        self.set_tf32(False)


FIELDS = ["impl", "work", "title", "config", "device", "device_name", "dtype", "options", "vs_f32", "pairs", "items",
          "tree_tokens", "text_len", "warmup", "repeat", "median_ms", "q1_ms", "q3_ms", "min_ms", "max_ms",
          "items_per_s", "peak_mem_bytes", "binding_calls", "profile", "threads", "versions"]


def main(argv):
    args = parse_args(argv)
    if args.dry_run:
        dry_run(args)
        return 0
    try:
        b = Bench(args)
    except ImportError as e:
        print("hf_bench: %s (this script needs torch and transformers: pip install torch transformers)" % e,
              file=sys.stderr)
        return 1
    done = []

    def emit(rec):
        # vs_f32 (the accuracy of a lower precision) stays null: every
        # variant here computes in float32; binding_calls and profile are
        # lavascope's.
        rec = {k: rec.get(k) for k in FIELDS}
        done.append(rec)
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print("%-6s %-14s median %.2f ms (%d runs), %.1f items/s" % (
                rec["impl"][3:], rec["work"], rec["median_ms"], rec["repeat"], rec["items_per_s"]),
                file=sys.stderr, flush=True)

    try:
        b.run(emit)
    except RuntimeError as e:
        msg = str(e).split("\n")[0]
        if "out of memory" in msg.lower():
            print("hf_bench: %s ran out of memory: %s" % (b.base["device"], msg), file=sys.stderr)
        else:
            print("hf_bench: %s" % msg, file=sys.stderr)
        return 1
    if not args.json:
        print("%-10s %-44s %10s %10s %12s %12s" % ("impl", "work", "median ms", "iqr ms", "items/s", "peak MiB"))
        for r in done:
            mem = "-" if r["peak_mem_bytes"] is None else "%.0f" % (r["peak_mem_bytes"] / 2**20)
            print("%-10s %-44s %10.2f %10.2f %12.1f %12s" % (
                r["impl"], r["title"], r["median_ms"], r["q3_ms"] - r["q1_ms"], r["items_per_s"], mem))
    return 0


# The process settings lavascope makes, so that both programs run alike on
# the CPU; a value the user set wins in each.
#   OMP_WAIT_POLICY=passive, as torch.Load sets it before libtorch loads: with
#   an OpenMP libtorch whose BLAS has threads of its own (Debian's), OpenMP's
#   spinning idle threads make CPU runs many times slower.
#   glibc malloc's tunables, as internal/malloc starts lavascope
#   with them: glibc reads them only at start, so this script starts itself
#   again once with them, unless glibc's malloc is set already or
#   LAVASCOPE_MALLOC=system.
MALLOC_TUNABLES = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"


def process_settings():
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if not sys.platform.startswith("linux") or os.environ.get("LAVASCOPE_MALLOC") == "system":
        return
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    user = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
    if "glibc.malloc." in tunables or any(k in os.environ for k in user):
        return
    env = dict(os.environ, GLIBC_TUNABLES=(tunables + ":" if tunables else "") + MALLOC_TUNABLES)
    try:
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    except OSError:
        pass


if __name__ == "__main__":
    process_settings()
    sys.exit(main(sys.argv[1:]))
