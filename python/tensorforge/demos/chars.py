"""Demo ``chars``: a character-level Transformer language model on Python's own
documentation text (``pydoc_data.topics``, shipped with CPython).

A decoder-only Transformer: token and position embeddings, two
``nn.TransformerEncoderLayer`` blocks (pre-norm, 4 heads, model width 64)
whose self-attention is masked causally (each position sees only the ones
before it), and a linear layer to the next character's logits. Trained with
``tfg.fit`` on random 64-character windows to predict every next character.
The figures: the training loss at the start and the end (nats per character;
a uniform guess over the vocabulary is ln V), and a line sampled from the
model.
"""
import numpy as np

import tensorforge as tfg
from tensorforge import nn

from ._common import Stopwatch, header

CONTEXT = 64
_REPLACEMENTS = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-",
                 "\u2013": "-", "\u2026": "..."}


def load_text():
    """The pydoc topics as one ASCII text, without the lines that only underline headings."""
    from pydoc_data.topics import topics
    text = "\n".join(topics[key] for key in sorted(topics))
    for old, new in _REPLACEMENTS.items():
        text = text.replace(old, new)
    text = text.encode("ascii", "ignore").decode("ascii")
    lines = [line for line in text.split("\n") if not (line and set(line) <= set("*-=^~"))]
    return "\n".join(lines)


class CharTransformer(nn.Module):
    """Characters (N, T) -> next-character logits (N, T, vocab)."""

    def __init__(self, vocab, width=64, heads=4, layers=2, context=CONTEXT):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0,
                                       batch_first=True, norm_first=True)
            for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self.context = context
        self.masks = {}

    def causal_mask(self, length):
        """Additive (length, length) mask: -inf above the diagonal (the future)."""
        if length not in self.masks:
            self.masks[length] = tfg.from_numpy(
                np.triu(np.full((length, length), -np.inf, np.float32), 1))
        return self.masks[length]

    def forward(self, chars):
        length = chars.shape[1]
        x = self.token(chars) + self.position(tfg.arange(length))
        mask = self.causal_mask(length)
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))


class LossCurve(tfg.Callback):
    """Keeps every training batch's loss."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def sample(model, encode, decode, prompt, length, temperature, rng):
    """Continues ``prompt`` one character at a time until a newline or ``length`` characters."""
    chars = list(encode(prompt))
    model.eval()
    with tfg.no_grad():
        for _ in range(length):
            window = tfg.tensor([chars[-model.context:]])
            logits = model(window)[0, -1].numpy().astype(np.float64) / temperature
            probabilities = np.exp(logits - logits.max())
            probabilities /= probabilities.sum()
            chars.append(int(rng.choice(len(probabilities), p=probabilities)))
            if decode([chars[-1]]) == "\n":
                break
    model.train()
    return decode(chars).rstrip("\n")


def main(fast=False, seed=0, output=None):
    text = load_text()
    alphabet = sorted(set(text))
    lookup = {c: i for i, c in enumerate(alphabet)}
    codes = np.array([lookup[c] for c in text], np.int64)

    def encode(s):
        return [lookup[c] for c in s]

    def decode(ids):
        return "".join(alphabet[i] for i in ids)

    tfg.manual_seed(seed)
    rng = tfg.random.default_generator()
    windows = 320 if fast else 6400
    starts = rng.integers(0, len(codes) - CONTEXT - 1, windows)
    chunks = np.stack([codes[s:s + CONTEXT + 1] for s in starts])
    header("chars", f"character-level Transformer on pydoc_data.topics ({len(text)} characters, "
                    f"vocabulary {len(alphabet)}): {windows} random windows of {CONTEXT}")
    inputs, targets = tfg.from_numpy(chunks[:, :-1].copy()), tfg.from_numpy(chunks[:, 1:].copy())
    loader = tfg.data.DataLoader(tfg.data.TensorDataset(inputs, targets), batch_size=32,
                                 shuffle=True)
    model = CharTransformer(len(alphabet))
    optimizer = tfg.optim.Adam(model.parameters(), lr=3e-3)
    vocab = len(alphabet)

    def next_char_loss(logits, target):
        return nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))

    curve = LossCurve()
    clock = Stopwatch()
    history = tfg.fit(model, next_char_loss, optimizer, loader, epochs=1 if fast else 2,
                      callbacks=[curve])
    seconds = clock()
    span = max(1, min(10, len(curve.losses) // 4))
    start, end = float(np.mean(curve.losses[:span])), float(np.mean(curve.losses[-span:]))
    line = sample(model, encode, decode, "The ", 30 if fast else 120, 0.7, rng)
    print(f"training: {len(curve.losses)} steps in {seconds:.1f}s")
    print(f"loss (nats/char, mean of {span} steps): start {start:.3f}, end {end:.3f} "
          f"(uniform guess: ln {vocab} = {np.log(vocab):.3f})")
    print(f"sampled: {line!r}")
    return {"start_loss": start, "end_loss": end, "sample": line, "steps": len(curve.losses),
            "seconds": seconds, "epochs": history.epochs}
