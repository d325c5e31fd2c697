"""QuickSelection: unsupervised feature scores from a sparse denoising autoencoder (Atashgahi et al. 2022).

The network is in → ``hidden`` → in with a sigmoid hidden layer and a linear output,
trained to reconstruct inputs corrupted by Gaussian noise (MSE). Both weight matrices
start Erdős–Rényi sparse with ε·(n_in + n_out) connections and evolve by sparse
evolutionary training (SET): after each epoch the fraction ζ of smallest-magnitude weights
is removed and as many new connections are grown at random. A feature's score is its
input neuron's strength Σ_j |W_ij|.

The weights are held truly sparsely — a value vector and CSR indices, multiplied as a
``torch.sparse_csr_tensor`` — so time and memory scale with the number of connections. ``dense=True``
runs the identical algorithm as a dense matrix times a 0/1 mask, as the comparison
baseline of the benchmark.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.core import progress
from erasekit.core.rng import seeded
from erasekit.features.base import (
    POSITIVE_INT,
    POSITIVE_REAL,
    FieldScores,
    RankingSelector,
    SelectionData,
    register_selector,
    standardise,
)


class _SparseMatmul(torch.autograd.Function):
    """x [b, n_in] @ W [n_in, n_out] for W given by CSR structure and a value vector.

    The backward pass stays sparse: ∂L/∂x = (W ∂L/∂y^T)^T via W's CSR form, and
    ∂L/∂W_k = (x^T ∂L/∂y)[row_k, col_k] evaluated only at the existing connections k
    (``sampled_addmm``)
    (torch's own CSR backward materialises a dense gradient, which defeats the point).
    """

    @staticmethod
    def forward(ctx, x, values, layer):
        ctx.save_for_backward(x, values)
        ctx.layer = layer
        transposed = torch.sparse_csr_tensor(
            layer.t_crow, layer.t_col, values[layer.t_order], (layer.n_out, layer.n_in), check_invariants=False
        )
        return (transposed @ x.t()).t()

    @staticmethod
    def backward(ctx, grad_out):
        x, values = ctx.saved_tensors
        layer = ctx.layer
        weight = torch.sparse_csr_tensor(layer.crow, layer.col, values, (layer.n_in, layer.n_out), check_invariants=False)
        grad_x = (weight @ grad_out.t()).t()
        pattern = torch.sparse_csr_tensor(
            layer.crow, layer.col, torch.zeros_like(values), (layer.n_in, layer.n_out), check_invariants=False
        )
        grad_values = torch.sparse.sampled_addmm(pattern, x.t().contiguous(), grad_out.contiguous(), beta=0.0).values()
        return grad_x, grad_values, None


class _SparseLayer:
    """Weights W [n_in, n_out] as sorted (row, col) pairs and a value vector."""

    def __init__(self, n_in: int, n_out: int, epsilon: float, rng: np.random.Generator, dense: bool):
        self.n_in, self.n_out, self.dense = n_in, n_out, dense
        n_connections = min(n_in * n_out, int(round(epsilon * (n_in + n_out))))
        flat = rng.choice(n_in * n_out, size=n_connections, replace=False)
        self.bias = torch.zeros(n_out, requires_grad=True)
        self._set(flat, rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=n_connections))

    def _set(self, flat: np.ndarray, values: np.ndarray) -> None:
        order = np.argsort(flat)
        self.flat = flat[order]
        rows, cols = np.divmod(self.flat, self.n_out)
        self.rows, self.cols = torch.as_tensor(rows), torch.as_tensor(cols)
        self.crow = torch.as_tensor(np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n_in))]))
        self.col = self.cols
        # W^T in CSR layout: its rows are W's columns, sorted by (col, row).
        t_order = np.lexsort((rows, cols))
        self.t_order = torch.as_tensor(t_order)
        self.t_crow = torch.as_tensor(np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=self.n_out))]))
        self.t_col = torch.as_tensor(rows[t_order])
        self.values = torch.tensor(values[order], dtype=torch.float32, requires_grad=True)
        if self.dense:
            mask = torch.zeros(self.n_in * self.n_out)
            mask[torch.as_tensor(self.flat)] = 1.0
            self.mask = mask.view(self.n_in, self.n_out)
            weight = torch.zeros(self.n_in * self.n_out)
            weight[torch.as_tensor(self.flat)] = self.values.detach()
            self.weight = weight.view(self.n_in, self.n_out).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight if self.dense else self.values, self.bias]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense:
            return x @ (self.weight * self.mask) + self.bias
        return _SparseMatmul.apply(x, self.values, self) + self.bias

    def current_values(self) -> np.ndarray:
        if self.dense:
            return self.weight.detach().view(-1)[torch.as_tensor(self.flat)].numpy().astype(np.float64)
        return self.values.detach().numpy().astype(np.float64)

    def evolve(self, zeta: float, rng: np.random.Generator, momentum: np.ndarray | None) -> np.ndarray | None:
        """Drop the ζ smallest-magnitude weights, regrow as many at random empty positions."""
        values = self.current_values()
        n_drop = int(zeta * len(values))
        if n_drop == 0:
            return momentum
        keep = np.sort(np.argsort(np.abs(values))[n_drop:])
        taken = set(self.flat[keep].tolist())
        grown: list[int] = []
        total = self.n_in * self.n_out
        while len(grown) < n_drop and len(taken) < total:
            for candidate in rng.integers(0, total, size=2 * (n_drop - len(grown))):
                if candidate not in taken:
                    taken.add(int(candidate))
                    grown.append(int(candidate))
                    if len(grown) == n_drop:
                        break
        new_flat = np.concatenate([self.flat[keep], np.asarray(grown, dtype=np.int64)])
        new_values = np.concatenate([values[keep], rng.normal(0.0, 0.01, size=len(grown))])
        self._set(new_flat, new_values)
        if momentum is None:
            return None
        return np.concatenate([momentum[keep], np.zeros(len(grown))])[np.argsort(new_flat)]

    def strength(self) -> np.ndarray:
        """Σ_j |W_ij| per input neuron i."""
        rows = self.flat // self.n_out
        return np.bincount(rows, weights=np.abs(self.current_values()), minlength=self.n_in)

    @property
    def n_connections(self) -> int:
        return len(self.flat)


@register_selector("quickselection")
class QuickSelection(RankingSelector):
    """Unsupervised: input-neuron strength of a SET-trained sparse denoising autoencoder (labels unused).

    Defaults are the paper's — 1000 hidden neurons, ε = 13, ζ = 0.2, noise 0.2, SGD lr 0.01,
    momentum 0.9, weight decay 1e-5, batch 100 — except ``epochs``: 20 instead of 100 (set
    ``epochs=100`` for the paper's setting). At most ``max_rows`` rows (a seeded sample) train the
    autoencoder. Columns are standardised first (``scaling="standard"``); for pixel data prefer
    ``scaling="minmax"``: standardising a pixel that is almost always blank blows its rare values up
    to tens of standard units, and over 100 epochs the autoencoder's strength then concentrates on
    such pixels (on MNIST at 100 epochs the top 50 pixels scored 0.19 against 0.79 for random ones; min–max: 0.89).
    On a field table the autoencoder sees the one-hot columns and a field's score is the
    summed strength of its columns. ``n_connections_`` reports the final connection count per layer.
    """

    _supervised: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "hidden": [POSITIVE_INT],
        "epsilon": [POSITIVE_REAL],
        "zeta": [Interval(Real, 0, 1, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "lr": [POSITIVE_REAL],
        "momentum": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [POSITIVE_INT],
        "epochs": [POSITIVE_INT],
        "dense": ["boolean"],
        "max_rows": [POSITIVE_INT],
        "scaling": [StrOptions({"standard", "minmax"})],
    }

    def __init__(
        self,
        k=None,
        hidden=1000,
        epsilon=13.0,
        zeta=0.2,
        noise=0.2,
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-5,
        batch_size=100,
        epochs=20,
        dense=False,
        max_rows=20000,
        scaling="standard",
        random_state=0,
    ):
        self.k = k
        self.hidden = hidden
        self.epsilon = epsilon
        self.zeta = zeta
        self.noise = noise
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.dense = dense
        self.max_rows = max_rows
        self.scaling = scaling
        self.random_state = random_state

    def _rank(self, X, y):
        rng = np.random.default_rng(self.random_state)
        if len(X) > self.max_rows:
            X = X[np.sort(rng.choice(len(X), self.max_rows, replace=False))]
        data = torch.as_tensor(standardise(X) if self.scaling == "standard" else min_max(X), dtype=torch.float32)
        n, n_in = data.shape
        layers = [
            _SparseLayer(n_in, self.hidden, self.epsilon, rng, self.dense),
            _SparseLayer(self.hidden, n_in, self.epsilon, rng, self.dense),
        ]
        momenta: list[np.ndarray | None] = [None, None]
        generator = torch.Generator().manual_seed(self.random_state)
        steps = -(-n // self.batch_size)
        with (
            seeded(self.random_state),
            warnings.catch_warnings(),
            progress.step("QuickSelection", self.epochs * steps) as advance,
        ):
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            for epoch in range(self.epochs):
                parameters = [p for layer in layers for p in layer.parameters()]
                optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
                self._restore_momentum(optimizer, layers, momenta)
                order = torch.randperm(n, generator=generator)
                for start in range(0, n, self.batch_size):
                    batch = data[order[start : start + self.batch_size]]
                    noisy = batch + self.noise * torch.randn(batch.shape, generator=generator)
                    hidden = torch.sigmoid(layers[0](noisy))
                    # ½‖x̂ − x‖² per example: the paper's SET code back-propagates x̂ − x; a mean over the outputs
                    # as well shrinks every gradient by the column count (784× on MNIST), and SGD at lr 0.01 then
                    # learns nothing in the paper's epochs (its ranking was no better than random columns)
                    loss = ((layers[1](hidden) - batch) ** 2).sum(dim=1).mean() / 2
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    advance(1)
                if epoch < self.epochs - 1:
                    momenta = [layer.evolve(self.zeta, rng, self._momentum_of(optimizer, layer)) for layer in layers]
        self.n_connections_ = tuple(layer.n_connections for layer in layers)
        self.reconstruction_mse_ = float(loss.detach())
        return layers[0].strength(), None

    def _momentum_of(self, optimizer, layer: _SparseLayer) -> np.ndarray | None:
        state = optimizer.state.get(layer.parameters()[0], {})
        buffer = state.get("momentum_buffer")
        if buffer is None:
            return None
        if layer.dense:
            return buffer.view(-1)[torch.as_tensor(layer.flat)].numpy().astype(np.float64)
        return buffer.numpy().astype(np.float64)

    @staticmethod
    def _restore_momentum(optimizer, layers, momenta) -> None:
        for layer, momentum in zip(layers, momenta):
            if momentum is None:
                continue
            weight = layer.parameters()[0]
            if layer.dense:
                buffer = torch.zeros(layer.n_in * layer.n_out)
                buffer[torch.as_tensor(layer.flat)] = torch.as_tensor(momentum, dtype=torch.float32)
                buffer = buffer.view(layer.n_in, layer.n_out)
            else:
                buffer = torch.as_tensor(momentum, dtype=torch.float32)
            optimizer.state[weight]["momentum_buffer"] = buffer

    def rank_fields(self, data: SelectionData) -> FieldScores:
        """Fit on the one-hot columns of the training split; a field scores the summed strength of its columns."""
        train, _, owner = data.one_hot
        self.fit(train)
        scores = np.bincount(owner, weights=self.scores_, minlength=len(data.names))
        return FieldScores(scores, extra={"connections_layer1": float(self.n_connections_[0])})


def min_max(X: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1]; constant columns become 0."""
    low, high = X.min(axis=0), X.max(axis=0)
    return (X - low) / np.where(high > low, high - low, 1.0)
