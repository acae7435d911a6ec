#!/usr/bin/env python3
"""PyTorch side of graft's safetensors interchange: fixtures for the C++ import test, a checker for
graft's export, and the PyTorch half of the cross-framework fine-tuning example.

    tools/torch_interop.py fixtures [OUT_DIR]          (default tests/fixtures/torch)
    tools/torch_interop.py check DIR [--models mlp,lenet,resnet,tiny]
    tools/torch_interop.py pretrain OUT.safetensors [--init torch|graft]
    tools/torch_interop.py finetune --weights W [--k 10] [--seeds 5] [--method probe|full]
                                    [--head-init torch|graft]

Needs python3 with torch and numpy (Debian: python3-torch, python3-numpy; on a machine where
`python3` is another interpreter, e.g. a pyenv shim, run /usr/bin/python3 tools/torch_interop.py).
Standard library + torch + numpy only: the safetensors reader and writer are in this file (there is
no `safetensors` package here). torch runs on one thread (torch.set_num_threads(1)).

Models (graft types; `g` = graft, backbones from examples/support/backbones.hpp)
------------------------------------------------------------------------------
  mlp    g::model<stack<input<1,28,28>, flatten, dense<256>, relu, dense<128>, relu>,
                  classifier<10>>                                     (float)
  lenet  g::model<backbones::lenet, classifier<10>>                   (float)
  resnet g::model<backbones::resnet, classifier<10>>                  (float)
  tiny   g::model<stack<input<1,6,6>, conv2d<4,3,pad<1>,stride<2>>, relu, flatten, dense<8>,
                  batch_norm, relu>, classifier<3>, double>            (double)
(tiny exercises what the other three do not: double precision, a convolution with bias, stride
and padding together, and batch_norm over a flat vector, i.e. BatchNorm1d.)

Naming convention (graft's canonical names)
-------------------------------------------
graft layer i = position in the model's layer list (backbone layers, then the head last),
parameter-free layers (relu, flatten, max_pool, global_avg_pool) counted too. The PyTorch twin of
a graft model is an nn.Sequential with one module per graft layer, so the canonical names are its
state_dict names:
  dense<N>, classifier<N>   nn.Linear(K, N)       {i}.weight [N, K] (graft stores [K, N]),
                                                  {i}.bias [N]
  conv2d<F,K,pad<P>,stride<S>[,no_bias]>
                            nn.Conv2d(C, F, K, stride=S, padding=P, bias=...)
                                                  {i}.weight [F, C, K, K], {i}.bias [F]
  batch_norm                nn.BatchNorm2d(C) (BatchNorm1d on a flat input), eps 1e-5,
                            momentum 0.1: {i}.weight, {i}.bias, {i}.running_mean,
                            {i}.running_var, {i}.num_batches_tracked (I64 scalar, shape [];
                            ignored by graft on import, written as 0 by graft's export)
  residual<block | shortcut>
                            Residual: body = nn.Sequential(block layers), shortcut =
                            nn.Sequential(projection layers) (empty = identity),
                            forward body(x) + shortcut(x): {i}.body.{k}.*, {i}.shortcut.{k}.*
                            (the inferred projection of a strided block with batch norm is
                            conv2d<F,1,stride<S>,no_bias> then batch_norm)
  relu, flatten, max_pool<2>, global_avg_pool
                            nn.ReLU, nn.Flatten, nn.MaxPool2d(2) (no padding, floor: as graft),
                            a module returning x.mean((2, 3))
Images are 1 x 28 x 28 (tiny: 1 x 6 x 6), MNIST pixels scaled by float(x) / 255.0f as graft's IDX
loader does.

Safetensors layout (written and checked here)
---------------------------------------------
8-byte little-endian u64 header size N, N bytes of UTF-8 JSON
  {"__metadata__": {"format": "pt"}, name: {"dtype": D, "shape": [...], "data_offsets": [b, e]}}
padded with spaces so that N is a multiple of 8, then the data: offsets relative to the byte after
the header, tensors contiguous with no gaps or overlaps, C order, little-endian. The writer lays
the tensors out as the reference (Rust) writer does: by dtype, widest first (I64 before F64 before
F32 before BF16 before F16), then by name; the header lists them in that order after
__metadata__. Readers must use the offsets, not the order.

fixtures OUT_DIR
----------------
Builds each model in PyTorch (torch.manual_seed per model, torch's default init; every batch norm
gets random weight ~U(0.5,1.5), bias ~N(0,0.1), running_mean ~N(0,0.1), running_var ~U(0.5,1.5)
and num_batches_tracked 100 + its index, so evaluation-mode batch norm is tested and the count is
seen to be ignored), rounds the weights to the stored dtype and uses exactly those, and writes
  mlp.safetensors      canonical names (nn.Sequential), BF16
  lenet.safetensors    a named module: conv1, conv2, fc1, fc2, fc3 (.weight/.bias), F32
  resnet.safetensors   torchvision-like names (conv1, bn1, layer1.0.conv1, layer1.0.bn1, ...,
                       layer2.0.downsample.0, layer2.0.downsample.1, ..., fc), F16 weights and
                       statistics, num_batches_tracked I64
  tiny.safetensors     canonical names, F64 (weights drawn in double: not representable in F32),
                       num_batches_tracked I64
  resnet_names.json    {graft canonical name: torch name}, every state_dict entry (the
                       num_batches_tracked ones too); lenet_names.json the same for lenet
  <model>_io.safetensors
                       "input" F32 [8, 1, 28, 28] (tiny: [8, 1, 6, 6]), uniform [0, 1) from a
                       seeded generator; "logits" F64 [8, classes]: the model in float64
                       (model.double(), eval mode) on that input with the stored weights
Every file is read back with the strict reader below and loaded into the canonical nn.Sequential
(through the name map where there is one) to confirm that it gives the same logits.

check DIR
---------
The reverse direction. For each model, DIR/<model>.safetensors (graft's export: canonical names,
F32 for a float model, F64 for tiny, num_batches_tracked I64) and DIR/<model>_io.safetensors
("input", "logits" computed by graft, F32 or F64). Validates each file strictly (header size and
space padding to a multiple of 8, JSON without duplicate keys, known dtypes, sizes matching shapes,
tensors contiguous from offset 0 to the end of the file), loads the weights into the canonical
nn.Sequential with load_state_dict(strict=True), runs it in eval mode in float64 (the stored values
exactly) and prints the max relative error max|torch - graft| / max|graft| of the logits (and the
same against torch in the model's own precision, for information). Exits 1 when an error exceeds
1e-5 (float models) or 1e-10 (double), or a file is missing or malformed.

pretrain OUT.safetensors
------------------------
The source task of the transfer demo (examples/transfer.cpp) in PyTorch: the MLP backbone
784-256-128 (relu) + a 5-way head on MNIST digits 0-4 (train split, original order), SGD lr 0.05
momentum 0.9, batch 64, 5 epochs, seed 0. MNIST is read from the raw IDX files (or .gz) in graft's
search path: $GRAFT_DATA_DIR/mnist, then $XDG_CACHE_HOME/graft/mnist or ~/.cache/graft/mnist (see
`./run setup`: fetch_mnist). Saves canonical names (1.*, 3.*, head 5.*), F32.

finetune --weights W --k K --seeds N --method probe|full
--------------------------------------------------------
The target task: digits 5-9 relabeled 0..4. For seed s = 0..N-1: k images per class chosen exactly
as graft's dataset::few_shot(k, seed{s}) (SplitMix64, Fisher-Yates permutation(n, s), keep each
index whose class has fewer than k kept, in kept order), the backbone from W (1.* and 3.*,
canonical names; anything else in W, such as a head, is ignored), a new 5-way head, 300 steps of
SGD momentum 0.9, batch min(64, 5k), lr 0.01 (full: everything trains) or 0.1 (probe: backbone
frozen); accuracy on all test images of 5-9. Prints each seed's accuracy, the mean +- sample std,
and as the last line one JSON object (method, k, seeds, steps, batch, accuracy list, mean, std).

How it mirrors graft's finetune (include/graft/train/fit.hpp):
  * the same data order: epochs over the few-shot set, epoch e shuffled by Fisher-Yates with
    splitmix64::stream(seed{s}, e), batches of B in that order with a partial last batch, stopping
    after 300 steps (for k = 10 the batch of 50 is the whole set, one step per epoch);
  * the loss is the batch mean of softmax cross-entropy; SGD updates as PyTorch's (graft follows
    PyTorch: the momentum buffer starts as the first gradient, no dampening);
  * probe: only the head is in the optimizer; graft computes the frozen backbone's features once
    (feature cache), which gives the same numbers as running it each step.
Differences:
  * the new head's initial weights: torch's default init after torch.manual_seed(s) (the same
    distribution as graft's init::pytorch, U(+-1/sqrt(fan_in)), from another generator); with
    --head-init graft they are graft's exactly (attach<classifier<5>>(net, seed{s}): SplitMix64
    stream 0xEAD of seed s);
  * pretrain's initial weights: torch's default after torch.manual_seed(0), or with --init graft
    graft's exactly (make_model(seed{0}): layer i draws from stream i, the head from 0xEAD);
  * floating point: PyTorch's GEMM summation order and exp/log differ from graft's, so runs are
    not bitwise equal; over 300 steps (2,400 for pretrain) the two drift apart like two seeds of
    rounding, not like two different methods.
"""
import argparse
import copy
import gzip
import json
import math
import os
import struct
import sys
import time
from collections import OrderedDict

try:
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.exit(f"torch_interop.py: {e}; run it with a python3 that has torch and numpy "
             f"(Debian: python3-torch python3-numpy, e.g. /usr/bin/python3 {sys.argv[0]})")

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ================================================================================================
# safetensors
# ================================================================================================
# name: (torch dtype, size in bytes, rank in the reference writer's order)
DTYPES = {
    "BOOL": (torch.bool, 1, 0),
    "U8": (torch.uint8, 1, 1),
    "I8": (torch.int8, 1, 2),
    "I16": (torch.int16, 2, 5),
    "F16": (torch.float16, 2, 7),
    "BF16": (torch.bfloat16, 2, 8),
    "I32": (torch.int32, 4, 9),
    "F32": (torch.float32, 4, 11),
    "F64": (torch.float64, 8, 12),
    "I64": (torch.int64, 8, 13),
}
TORCH_TO_ST = {v[0]: k for k, v in DTYPES.items()}


class FormatError(Exception):
    pass


def tensor_bytes(t):
    """The little-endian C-order bytes of a CPU tensor."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        a = t.view(torch.int16).numpy()
    else:
        a = t.numpy()
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False)).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: iterable of (name, tensor); each written with its own dtype."""
    items = list(tensors)
    names = [n for n, _ in items]
    if len(set(names)) != len(names) or "__metadata__" in names:
        raise ValueError("duplicate or reserved tensor name")
    for n, t in items:
        if t.dtype not in TORCH_TO_ST:
            raise ValueError(f"{n}: dtype {t.dtype} has no safetensors name here")
    # the reference writer's layout: widest dtype first, then by name
    items.sort(key=lambda nt: (-DTYPES[TORCH_TO_ST[nt[1].dtype]][2], nt[0].encode("utf-8")))
    header = OrderedDict()
    header["__metadata__"] = dict(metadata if metadata is not None else {"format": "pt"})
    blobs, offset = [], 0
    for n, t in items:
        b = tensor_bytes(t)
        header[n] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                     "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return 8 + len(h) + offset


def _no_duplicates(pairs):
    d = OrderedDict()
    for k, v in pairs:
        if k in d:
            raise FormatError(f"duplicate key {k!r} in the header")
        d[k] = v
    return d


def read_safetensors(path):
    """Reads and validates a safetensors file strictly; returns (OrderedDict name -> tensor in
    header order, metadata dict or None, notes: list of non-fatal remarks). FormatError on any
    violation of the layout described in the module docstring."""
    if sys.byteorder != "little":
        raise FormatError("this reader assumes a little-endian host")
    with open(path, "rb") as f:
        data = f.read()
    notes = []
    if len(data) < 8:
        raise FormatError(f"{len(data)} bytes: shorter than the 8-byte header size")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8:
        raise FormatError(f"header size {n} exceeds the {len(data) - 8} bytes after it")
    if n < 2:
        raise FormatError(f"header size {n}: too small for a JSON object")
    if n % 8 != 0:
        raise FormatError(f"header size {n} is not a multiple of 8 (pad the JSON with spaces)")
    raw = data[8:8 + n]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"header is not UTF-8: {e}") from None
    if not text.startswith("{"):
        raise FormatError("header does not start with '{'")
    body = text.rstrip(" ")
    pad = len(text) - len(body)
    if not body.endswith("}"):
        raise FormatError("header JSON must end with '}' followed only by spaces")
    if pad > 7:
        raise FormatError(f"{pad} bytes of padding: more than needed for a multiple of 8")
    try:
        header = json.loads(body, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise FormatError(f"header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise FormatError("__metadata__ must map strings to strings")
    else:
        notes.append("no __metadata__")
    data_len = len(data) - 8 - n
    spans = []
    for name, e in header.items():
        where = f"tensor {name!r}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{where}: entry must have exactly dtype, shape and data_offsets")
        if e["dtype"] not in DTYPES:
            raise FormatError(f"{where}: unsupported dtype {e['dtype']!r}")
        shape, offs = e["shape"], e["data_offsets"]
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise FormatError(f"{where}: shape must be a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise FormatError(f"{where}: data_offsets must be [begin, end], 0 <= begin <= end")
        size = DTYPES[e["dtype"]][1] * math.prod(shape)
        if offs[1] - offs[0] != size:
            raise FormatError(f"{where}: {offs[1] - offs[0]} bytes for shape {shape} "
                              f"{e['dtype']} ({size} bytes expected)")
        if offs[0] % DTYPES[e["dtype"]][1] != 0:
            notes.append(f"{where} starts at offset {offs[0]}, not aligned to its element size")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise FormatError(f"tensor {name!r} begins at {b}, expected {pos} "
                              f"({'a gap' if b > pos else 'an overlap'})")
        pos = e
    if pos != data_len:
        raise FormatError(f"tensors end at {pos} but the data section has {data_len} bytes")
    buf = bytearray(data)
    out = OrderedDict()
    for name, e in header.items():
        dt, _, _ = DTYPES[e["dtype"]]
        count = math.prod(e["shape"])
        if count == 0:
            t = torch.empty(e["shape"], dtype=dt)
        else:
            t = torch.frombuffer(buf, dtype=dt, count=count,
                                 offset=8 + n + e["data_offsets"][0]).reshape(e["shape"]).clone()
        out[name] = t
    return out, meta, notes


def dtype_name(t):
    return TORCH_TO_ST.get(t.dtype, str(t.dtype))


# ================================================================================================
# models: the canonical nn.Sequential twins of graft models, and the named variants
# ================================================================================================
class Residual(nn.Module):
    """graft's residual<block...>: body(x) + shortcut(x); an empty shortcut is the identity."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class GlobalAvgPool(nn.Module):
    """graft's global_avg_pool: C x H x W -> C."""

    def forward(self, x):
        return x.mean((2, 3))


def basic_block(cin, f, stride):
    """backbones::basic_block<f, stride> on cin channels, with graft's inferred projection."""
    body = nn.Sequential(nn.Conv2d(cin, f, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(f), nn.ReLU(),
                         nn.Conv2d(f, f, 3, padding=1, bias=False), nn.BatchNorm2d(f))
    if stride != 1 or cin != f:
        shortcut = nn.Sequential(nn.Conv2d(cin, f, 1, stride=stride, bias=False), nn.BatchNorm2d(f))
    else:
        shortcut = nn.Sequential()
    return Residual(body, shortcut)


def seq_mlp(classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, classes))


def seq_lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def seq_resnet():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.MaxPool2d(2), basic_block(16, 16, 1), nn.ReLU(),
                         basic_block(16, 32, 2), nn.ReLU(), basic_block(32, 64, 2), nn.ReLU(),
                         GlobalAvgPool(), nn.Linear(64, 10))


def seq_tiny():
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(36, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


class NamedLeNet(nn.Module):
    """LeNet as one would write it in PyTorch: conv1, conv2, fc1, fc2, fc3."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class TVBasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock's names: conv1, bn1, conv2, bn2, downsample."""

    def __init__(self, cin, f, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, f, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f)
        self.conv2 = nn.Conv2d(f, f, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, f, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(f))
                           if stride != 1 or cin != f else None)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class TVResNet(nn.Module):
    """backbones::resnet + classifier<10> with torchvision-like names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(TVBasicBlock(16, 16, 1))
        self.layer2 = nn.Sequential(TVBasicBlock(16, 32, 2))
        self.layer3 = nn.Sequential(TVBasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


# graft canonical module prefix -> torch module prefix
LENET_PREFIXES = {"0": "conv1", "3": "conv2", "7": "fc1", "9": "fc2", "11": "fc3"}
RESNET_PREFIXES = {"0": "conv1", "1": "bn1", "11": "fc"}
for _i, _layer in (("4", "layer1"), ("6", "layer2"), ("8", "layer3")):
    RESNET_PREFIXES.update({f"{_i}.body.0": f"{_layer}.0.conv1", f"{_i}.body.1": f"{_layer}.0.bn1",
                            f"{_i}.body.3": f"{_layer}.0.conv2", f"{_i}.body.4": f"{_layer}.0.bn2",
                            f"{_i}.shortcut.0": f"{_layer}.0.downsample.0",
                            f"{_i}.shortcut.1": f"{_layer}.0.downsample.1"})

# name: canonical builder, named builder (None: the canonical one), prefix map, fixture dtype,
# model dtype, input shape (one sample), classes, torch seed
MODELS = OrderedDict([
    ("mlp", dict(seq=seq_mlp, named=None, prefixes=None, store=torch.bfloat16,
                 dtype=torch.float32, input=(1, 28, 28), seed=1)),
    ("lenet", dict(seq=seq_lenet, named=NamedLeNet, prefixes=LENET_PREFIXES, store=torch.float32,
                   dtype=torch.float32, input=(1, 28, 28), seed=2)),
    ("resnet", dict(seq=seq_resnet, named=TVResNet, prefixes=RESNET_PREFIXES,
                    store=torch.float16, dtype=torch.float32, input=(1, 28, 28), seed=3)),
    ("tiny", dict(seq=seq_tiny, named=None, prefixes=None, store=torch.float64,
                  dtype=torch.float64, input=(1, 6, 6), seed=4)),
])
SAMPLES = 8


def name_map(canonical, named, prefixes):
    """{canonical state_dict name: named state_dict name}, checked to be a bijection with equal
    shapes."""
    cs, ns = canonical.state_dict(), named.state_dict()
    out = OrderedDict()
    for k in cs:
        prefix, _, leaf = k.rpartition(".")
        if prefix not in prefixes:
            raise RuntimeError(f"no torch name for graft layer {prefix}")
        out[k] = prefixes[prefix] + "." + leaf
    if sorted(out.values()) != sorted(ns):
        raise RuntimeError(f"name map is not a bijection: {set(out.values()) ^ set(ns)}")
    for k, v in out.items():
        if cs[k].shape != ns[v].shape:
            raise RuntimeError(f"{k} {tuple(cs[k].shape)} vs {v} {tuple(ns[v].shape)}")
    return out


# ================================================================================================
# fixtures
# ================================================================================================
def randomise_batch_norm(model, gen):
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                dt = m.weight.dtype
                m.weight.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
                m.bias.copy_(0.1 * torch.randn(c, generator=gen, dtype=torch.float64))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen, dtype=torch.float64))
                m.running_var.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
                m.num_batches_tracked.fill_(100 + count)
                assert m.weight.dtype == dt
                count += 1
    return count


def round_to(model, store):
    """Rounds every floating state entry to the stored dtype (in place, kept in the model's)."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.to(store).to(t.dtype))


def max_rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max()).item()


def build_fixture_model(name):
    spec = MODELS[name]
    torch.manual_seed(spec["seed"])
    model = (spec["named"] or spec["seq"])()
    if spec["dtype"] == torch.float64:  # draw the initial weights in double precision
        for m in model.modules():
            if hasattr(m, "reset_parameters") and not isinstance(
                    m, nn.modules.batchnorm._BatchNorm):
                m.reset_parameters()
    gen = torch.Generator().manual_seed(1000 + spec["seed"])
    randomise_batch_norm(model, gen)
    round_to(model, spec["store"])
    return model.eval()


def fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    rows = []
    for name, spec in MODELS.items():
        model = build_fixture_model(name)
        sd = model.state_dict()
        stored = OrderedDict((k, v.to(spec["store"]) if v.is_floating_point() else v)
                             for k, v in sd.items())
        wpath = os.path.join(out_dir, f"{name}.safetensors")
        size = write_safetensors(wpath, stored.items())
        rows.append((os.path.basename(wpath), size))
        mapping = None
        if spec["prefixes"] is not None:
            mapping = name_map(spec["seq"](), model, spec["prefixes"])
            mpath = os.path.join(out_dir, f"{name}_names.json")
            with open(mpath, "w", encoding="utf-8") as f:
                json.dump(mapping, f, indent=1)
                f.write("\n")
            rows.append((os.path.basename(mpath), os.path.getsize(mpath)))

        gen = torch.Generator().manual_seed(2000 + spec["seed"])
        x = torch.rand((SAMPLES,) + spec["input"], generator=gen, dtype=torch.float32)
        with torch.no_grad():
            logits = copy.deepcopy(model).double().eval()(x.double())
            own = model(x.to(spec["dtype"]))
        iopath = os.path.join(out_dir, f"{name}_io.safetensors")
        size_io = write_safetensors(iopath, [("input", x), ("logits", logits)])
        rows.append((os.path.basename(iopath), size_io))

        # read back: the canonical Sequential from the file gives the same float64 logits
        w, meta, notes = read_safetensors(wpath)
        io, _, _ = read_safetensors(iopath)
        assert meta == {"format": "pt"} and not notes, (meta, notes)
        if mapping is not None:
            w = OrderedDict((k, w[v]) for k, v in mapping.items())
        seq = spec["seq"]().double()
        seq.load_state_dict(w, strict=True)
        with torch.no_grad():
            back = seq.eval()(io["input"].double())
        if not torch.equal(back, io["logits"]) or not torch.equal(io["input"], x):
            raise SystemExit(f"{name}: the canonical model read back gives other logits "
                             f"(max rel {max_rel(back, io['logits']):.3g})")
        print(f"{name}: {len(sd)} tensors {dtype_name(next(iter(stored.values())))}, "
              f"logits {tuple(logits.shape)} in [{logits.min():.3f}, {logits.max():.3f}]; "
              f"torch {str(spec['dtype']).replace('torch.', '')} vs float64: max rel "
              f"{max_rel(own, logits):.2e}; read back into the canonical nn.Sequential: equal")
    print()
    for fname, size in rows:
        print(f"  {fname:28s} {size:9,d} bytes")
        total += size
    print(f"  {'total':28s} {total:9,d} bytes")


# ================================================================================================
# check
# ================================================================================================
def check(dir_, models):
    failed = False
    print(f"{'model':8s} {'weights':8s} {'logits':8s} {'max rel vs torch f64':>21s} "
          f"{'vs torch own':>13s} {'bound':>7s}  verdict")
    for name in models:
        spec = MODELS[name]
        want = TORCH_TO_ST[spec["dtype"]]
        bound = 1e-5 if spec["dtype"] == torch.float32 else 1e-10
        wpath = os.path.join(dir_, f"{name}.safetensors")
        iopath = os.path.join(dir_, f"{name}_io.safetensors")
        try:
            if not os.path.exists(wpath) or not os.path.exists(iopath):
                raise FormatError(f"missing {wpath if not os.path.exists(wpath) else iopath}")
            w, meta, notes = read_safetensors(wpath)
            io, _, io_notes = read_safetensors(iopath)
            for nt in notes + io_notes:
                print(f"  note ({name}): {nt}")
            for k, t in w.items():
                if k.endswith("num_batches_tracked"):
                    if t.dtype != torch.int64 or t.shape != torch.Size([]):
                        raise FormatError(f"{k}: {dtype_name(t)} {list(t.shape)}, expected I64 []")
                    if t.item() != 0:
                        print(f"  note ({name}): {k} is {t.item()}, graft writes 0")
                elif dtype_name(t) != want:
                    raise FormatError(f"{k}: {dtype_name(t)}, expected {want}")
            seq = spec["seq"]().to(spec["dtype"])
            try:
                seq.load_state_dict(w, strict=True)
            except RuntimeError as e:
                msg = " ".join(str(e).split())
                raise FormatError(f"load_state_dict(strict=True): {msg}") from None
            if set(io) != {"input", "logits"}:
                raise FormatError(f"{iopath}: tensors {sorted(io)}, expected input and logits")
            x, ref = io["input"], io["logits"]
            classes = seq[-1].out_features
            if tuple(x.shape[1:]) != spec["input"] or tuple(ref.shape) != (x.shape[0], classes):
                raise FormatError(f"input {list(x.shape)} / logits {list(ref.shape)}: expected "
                                  f"[n, {', '.join(map(str, spec['input']))}] / [n, {classes}]")
            if dtype_name(x) not in ("F32", "F64") or dtype_name(ref) not in ("F32", "F64"):
                raise FormatError("input and logits must be F32 or F64")
            seq.eval()
            with torch.no_grad():
                own = seq(x.to(spec["dtype"]))
                exact = copy.deepcopy(seq).double()(x.double())
            err, err_own = max_rel(exact, ref), max_rel(own, ref)
            ok = err <= bound
            failed |= not ok
            print(f"{name:8s} {want:8s} {dtype_name(ref):8s} {err:21.3e} {err_own:13.3e} "
                  f"{bound:7.0e}  {'ok' if ok else 'FAIL'} ({x.shape[0]} samples, {len(w)} tensors)")
        except FormatError as e:
            failed = True
            print(f"{name:8s} FAIL: {e}")
    return 1 if failed else 0


# ================================================================================================
# graft's random numbers (include/graft/random/random.hpp)
# ================================================================================================
M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, state):
        self.state = state & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform01(self):
        return (self.next() >> 11) * 2.0 ** -53

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.uniform01()

    @staticmethod
    def stream(seed, stream_id):
        mix = SplitMix64(seed ^ ((0xD1B54A32D192ED03 * (stream_id + 1)) & M64))
        return SplitMix64(mix.next())


def fisher_yates(p, rng):
    for i in range(len(p) - 1, 0, -1):
        j = rng.next() % (i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def permutation(n, seed):
    """graft::data::permutation(n, seed{seed})."""
    return fisher_yates(list(range(n)), SplitMix64(seed))


def few_shot(labels, k, seed):
    """Indices of graft's dataset::few_shot(k, seed{seed}), in kept order."""
    taken, kept = {}, []
    for i in permutation(len(labels), seed):
        c = int(labels[i])
        if taken.get(c, 0) < k:
            taken[c] = taken.get(c, 0) + 1
            kept.append(i)
    return kept


HEAD_STREAM = 0xEAD


def graft_dense_init_(linear, rng):
    """graft's init::pytorch for dense<N> on K inputs: the K x N weight then the N biases, each
    U(-1/sqrt(K), 1/sqrt(K)) from rng, rounded to float; copied into torch's [N, K] layout."""
    n, k = linear.out_features, linear.in_features
    b = 1.0 / math.sqrt(k)
    w = np.array([rng.uniform(-b, b) for _ in range(k * n)], dtype=np.float64)
    bias = np.array([rng.uniform(-b, b) for _ in range(n)], dtype=np.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.astype(np.float32).reshape(k, n).T.copy()))
        linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


# ================================================================================================
# MNIST and training (pretrain, finetune)
# ================================================================================================
def mnist_dir():
    dirs = []
    if os.environ.get("GRAFT_DATA_DIR"):
        dirs.append(os.path.join(os.environ["GRAFT_DATA_DIR"], "mnist"))
    if os.environ.get("XDG_CACHE_HOME"):
        dirs.append(os.path.join(os.environ["XDG_CACHE_HOME"], "graft", "mnist"))
    elif os.environ.get("HOME"):
        dirs.append(os.path.join(os.environ["HOME"], ".cache", "graft", "mnist"))
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    for d in dirs:
        if all(os.path.isfile(os.path.join(d, f)) or os.path.isfile(os.path.join(d, f + ".gz"))
               for f in files):
            return d
    raise SystemExit(f"MNIST not found in {dirs} (run ./run setup: it fetches it)")


def read_idx(path):
    if not os.path.isfile(path):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    rank = data[3]
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    a = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if a.size != math.prod(dims):
        raise SystemExit(f"{path}: {a.size} bytes of payload for dims {dims}")
    return a.reshape(dims)


def load_mnist():
    d = mnist_dir()
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        # graft's from_idx: static_cast<float>(x) / 255.0f
        x = images.astype(np.float32) / np.float32(255.0)
        out[split] = (torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(labels))
    return out


def only_classes(ds, ids):
    """graft's only_classes(ids).relabeled(): original order, labels replaced by their rank."""
    x, y = ds
    ids = sorted(ids)
    keep = torch.zeros_like(y, dtype=torch.bool)
    for c in ids:
        keep |= y == c
    idx = torch.nonzero(keep).flatten()
    rank = {c: r for r, c in enumerate(ids)}
    return x[idx], torch.tensor([rank[int(c)] for c in y[idx]], dtype=torch.int64)


def fit(model, x, y, opt, batch, seed, epochs=0, steps=0):
    """graft's fit loop: epoch e shuffled by splitmix64::stream(seed, e), batches in that order
    with a partial last one, until `steps` (or epochs * batches per epoch) steps."""
    n = len(y)
    per_epoch = (n + batch - 1) // batch
    total = steps or epochs * per_epoch
    step, e = 0, 0
    model.train()
    while step < total:
        order = torch.tensor(fisher_yates(list(range(n)), SplitMix64.stream(seed, e)))
        for b in range(per_epoch):
            if step == total:
                break
            idx = order[b * batch:(b + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
        e += 1
    return step


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(y), 1000)])
    return (pred == y).double().mean().item()


def pretrain(out, init):
    mnist = load_mnist()
    x, y = only_classes(mnist["train"], [0, 1, 2, 3, 4])
    tx, ty = only_classes(mnist["test"], [0, 1, 2, 3, 4])
    torch.manual_seed(0)
    model = seq_mlp(5)
    if init == "graft":  # make_model(seed{0}): layer i from stream i, the head from 0xEAD
        for i in (1, 3):
            graft_dense_init_(model[i], SplitMix64.stream(0, i))
        graft_dense_init_(model[5], SplitMix64.stream(0, HEAD_STREAM))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    t0 = time.time()
    steps = fit(model, x, y, opt, batch=64, seed=0, epochs=5)
    secs = time.time() - t0
    acc = accuracy(model, tx, ty)
    write_safetensors(out, model.state_dict().items())
    print(f"pre-trained MLP 784-256-128 + 5-way head on {len(y)} images of 0-4 (init {init}): "
          f"5 epochs, {steps} steps in {secs:.1f} s; test accuracy on 0-4: {100 * acc:.2f}% "
          f"({len(ty)} images); saved to {out}")


def finetune(weights, k, seeds, method, head_init):
    w, _, notes = read_safetensors(weights)
    for nt in notes:
        print(f"note: {nt}")
    backbone_keys = ["1.weight", "1.bias", "3.weight", "3.bias"]
    missing = [n for n in backbone_keys if n not in w]
    if missing:
        raise SystemExit(f"{weights}: no {', '.join(missing)} (canonical names of the MLP "
                         f"backbone expected)")
    ignored = [n for n in w if n not in backbone_keys]
    mnist = load_mnist()
    pool_x, pool_y = only_classes(mnist["train"], [5, 6, 7, 8, 9])
    tx, ty = only_classes(mnist["test"], [5, 6, 7, 8, 9])
    batch = min(64, 5 * k)
    steps = 300
    lr = 0.1 if method == "probe" else 0.01
    print(f"fine-tuning ({method}) the MLP backbone of {weights}"
          f"{' (ignored: ' + ', '.join(ignored) + ')' if ignored else ''} on digits 5-9, k={k} "
          f"per class, {steps} steps of SGD (momentum 0.9, lr {lr}, batch {batch}), head init "
          f"{head_init}; test accuracy on {len(ty)} images of 5-9")
    accs = []
    for s in range(seeds):
        idx = torch.tensor(few_shot(pool_y.tolist(), k, s))
        x, y = pool_x[idx], pool_y[idx]
        model = seq_mlp(5)
        with torch.no_grad():
            for n in backbone_keys:
                i, leaf = n.split(".")
                getattr(model[int(i)], leaf).copy_(w[n].to(torch.float32))
        torch.manual_seed(s)
        model[5] = nn.Linear(128, 5)
        if head_init == "graft":  # attach<classifier<5>>(net, seed{s})
            graft_dense_init_(model[5], SplitMix64.stream(s, HEAD_STREAM))
        if method == "probe":
            for m in list(model)[:5]:
                for p in m.parameters():
                    p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
        t0 = time.time()
        fit(model, x, y, opt, batch=batch, seed=s, steps=steps)
        acc = accuracy(model, tx, ty)
        accs.append(acc)
        print(f"seed {s}: {100 * acc:.2f}%  ({len(y)} images, {time.time() - t0:.2f} s)")
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else 0.0
    print(f"{method} k={k}: {100 * mean:.2f}% +- {100 * std:.2f} over {seeds} seeds")
    print(json.dumps({"framework": "pytorch", "method": method, "k": k, "seeds": seeds,
                      "steps": steps, "batch": batch, "lr": lr, "head_init": head_init,
                      "accuracy": [round(a, 6) for a in accs], "mean": round(mean, 6),
                      "std": round(std, 6)}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fixtures", help="write the PyTorch fixtures for graft's import test")
    p.add_argument("out_dir", nargs="?", default=os.path.join(REPO, "tests", "fixtures", "torch"))
    p = sub.add_parser("check", help="check graft's safetensors export against PyTorch")
    p.add_argument("dir")
    p.add_argument("--models", default=",".join(MODELS))
    p = sub.add_parser("pretrain", help="pre-train the MLP on MNIST 0-4 in PyTorch")
    p.add_argument("out")
    p.add_argument("--init", choices=("torch", "graft"), default="torch")
    p = sub.add_parser("finetune", help="fine-tune on MNIST 5-9, k images per class")
    p.add_argument("--weights", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--method", choices=("probe", "full"), default="full")
    p.add_argument("--head-init", choices=("torch", "graft"), default="torch")
    a = ap.parse_args(argv)
    if a.cmd == "fixtures":
        fixtures(a.out_dir)
    elif a.cmd == "check":
        models = [m for m in a.models.split(",") if m]
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
        return check(a.dir, models)
    elif a.cmd == "pretrain":
        pretrain(a.out, a.init)
    elif a.cmd == "finetune":
        if a.k < 1 or a.seeds < 1:
            ap.error("--k and --seeds must be positive")
        finetune(a.weights, a.k, a.seeds, a.method, a.head_init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
