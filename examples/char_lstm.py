"""A character-level LSTM trained with truncated backpropagation through time on the Zen
of Python (the text of the standard library's ``this`` module, so nothing is downloaded).

Run: .venv/bin/python examples/char_lstm.py

The text is cut into ``streams`` parallel streams read in chunks of ``bptt`` characters.
Each chunk is one forward and backward pass; the LSTM's state is carried to the next
chunk but detached from its graph, so gradients flow back at most ``bptt`` steps (that is
truncated BPTT: memory and time per update stay fixed however long the text is), while
the state still remembers what came before. Prints the loss in bits per character as it
falls from log2(vocabulary) to well under one (a text of 850 characters is learnt by
heart), then text sampled from the model.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import math

import chainrule as torch
import chainrule.nn as nn


def zen_of_python() -> str:
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the text
        import this
    return codecs.decode(this.s, "rot13")


class CharLSTM(nn.Module):
    def __init__(self, vocabulary: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocabulary)

    def forward(self, chars: torch.Tensor, state: tuple | None = None) -> tuple:
        output, state = self.lstm(self.embed(chars), state)
        return self.out(output), state


def batches(ids: torch.Tensor, streams: int, bptt: int) -> list:
    """(inputs, targets) chunks of shape (streams, bptt): stream s reads the s-th slice of
    the text, so consecutive chunks continue each stream where it stopped."""
    length = (len(ids) - 1) // streams
    x = ids[:streams * length].reshape(streams, length)
    y = ids[1:streams * length + 1].reshape(streams, length)
    return [(x[:, i:i + bptt], y[:, i:i + bptt]) for i in range(0, length - bptt + 1, bptt)]


def sample(model: CharLSTM, chars: list[str], start: str, length: int, seed: int = 0) -> str:
    """Characters drawn one at a time from the model's predictions, after ``start``."""
    index = {c: i for i, c in enumerate(chars)}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        logits, state = model(torch.tensor([[index[c] for c in start]]))
        text = start
        for _ in range(length):
            probabilities = torch.softmax(logits[0, -1] / 0.5, dim=0)  # temperature 0.5
            # inverse CDF: the first class whose cumulative probability passes a uniform draw
            u = torch.rand(1, generator=generator)
            nxt = min(int((torch.cumsum(probabilities, 0) < u).sum().item()), len(chars) - 1)
            text += chars[nxt]
            logits, state = model(torch.tensor([[nxt]]), state)
    return text


def main(epochs: int = 30, hidden: int = 128, streams: int = 8, bptt: int = 32, lr: float = 1e-2,
         seed: int = 0, verbose: bool = True) -> dict:
    text = zen_of_python()
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    torch.manual_seed(seed)
    model = CharLSTM(len(chars), hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    chunks = batches(ids, streams, bptt)
    history = []
    for epoch in range(epochs):
        state, total = None, 0.0
        for x, y in chunks:
            if state is not None:
                state = tuple(s.detach() for s in state)  # truncate: no gradient into the past
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += float(loss.item())
        history.append(total / len(chunks) / math.log(2))  # nats -> bits per character
        if verbose and (epoch % max(1, epochs // 6) == 0 or epoch == epochs - 1):
            print(f"epoch {epoch + 1:3d}  {history[-1]:.3f} bits/char")
    generated = sample(model, chars, "Beautiful is", 200, seed)
    if verbose:
        print(f"{len(text)} characters, {len(chars)} distinct (log2 = {math.log2(len(chars)):.2f} bits); "
              f"{len(chunks)} chunks of {streams} x {bptt} per epoch\n")
        print(generated)
    return {"bits": history, "vocabulary": len(chars), "sample": generated}


if __name__ == "__main__":
    main()
