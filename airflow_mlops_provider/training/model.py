"""The network: an MLP over standardized numeric features and one embedding per categorical feature.

Self-contained (torch and numpy only) because the logged model pickles this class by value.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TabularMLP(nn.Module):
    """MLP with ReLU hidden layers and a single output (a logit, or a scaled regression value).

    :param n_numeric: number of numeric inputs.
    :param cardinalities: embedding table size per categorical feature (index 0 = out of vocabulary).
    :param embedding_dim: width of each embedding.
    :param hidden_sizes: widths of the hidden layers.
    """

    def __init__(self, n_numeric: int, cardinalities: list[int], embedding_dim: int, hidden_sizes: list[int]) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(size, embedding_dim) for size in cardinalities)
        layers: list[nn.Module] = []
        width = n_numeric + embedding_dim * len(cardinalities)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        """Return one output per row, shape ``[n]``.

        :param numeric: float tensor ``[n, n_numeric]``.
        :param categories: int64 tensor ``[n, n_categorical]`` of category indices.
        """
        embedded = [table(categories[:, i]) for i, table in enumerate(self.embeddings)]
        return self.mlp(torch.cat([numeric, *embedded], dim=1)).squeeze(1)


def predict_raw(
    model: TabularMLP,
    numeric: np.ndarray,
    categories: np.ndarray,
    device: torch.device | None = None,
    batch_size: int = 65_536,
) -> np.ndarray:
    """Run ``model`` on encoded inputs in batches and return its raw outputs as a float64 array ``[n]``.

    :param model: the network; put in eval mode.
    :param numeric: float32 array ``[n, n_numeric]``.
    :param categories: int64 array ``[n, n_categorical]``.
    :param device: where the model lives; CPU by default.
    :param batch_size: rows per forward pass.
    """
    device = device or torch.device("cpu")
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(numeric), batch_size):
            stop = start + batch_size
            x_num = torch.from_numpy(numeric[start:stop]).to(device)
            x_cat = torch.from_numpy(categories[start:stop]).to(device)
            outputs.append(model(x_num, x_cat).float().cpu().numpy())
    return np.concatenate(outputs).astype(np.float64) if outputs else np.zeros(0)
