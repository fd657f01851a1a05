"""The training losses on hand-made inputs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rhmnet.losses import (
    consistency,
    distinct_channels,
    edge_aware_smoothness,
    image_derivatives,
    partial_cross_entropy,
    reliable_region_focal,
    sigmoid_focal_loss,
    smoothness_of_logits,
)
from rhmnet.model.heads import soft_aggregate


def test_partial_cross_entropy_ignores_unlabeled_and_weights_background():
    logits = torch.randn(1, 12, 2, 2)
    labels = torch.tensor([[[0, 1], [11, 2]]])
    loss = partial_cross_entropy(logits, labels, bg_weight=2.0)
    logp = F.log_softmax(logits, dim=1)[0]
    terms = [(-logp[1, 0, 1], 1.0), (-logp[11, 1, 0], 2.0), (-logp[2, 1, 1], 1.0)]
    expected = sum(w * t for t, w in terms) / sum(w for _, w in terms)
    assert torch.allclose(loss, expected, atol=1e-6)
    # changing the logits of the unlabeled pixel changes nothing
    logits2 = logits.clone()
    logits2[0, :, 0, 0] += torch.randn(12) * 10
    assert torch.allclose(partial_cross_entropy(logits2, labels, 2.0), loss)


def test_smoothness_of_an_all_zero_prediction_is_the_charbonnier_floor():
    # per channel: 10 * (C(0) + C(0)) + C(0) with C(0) = sqrt(1e-6) = 1e-3, summed over 12 channels
    zeros = torch.zeros(2, 12, 5, 5)
    expected = 12 * (10 * 2e-3 + 1e-3)
    assert math.isclose(float(edge_aware_smoothness(zeros, torch.rand(2, 5, 5))), expected, rel_tol=1e-5)


def test_smoothness_prefers_prediction_edges_on_image_edges():
    pred = torch.zeros(1, 12, 16, 16)
    pred[:, 1, :, 8:] = 1.0
    pred[:, 11, :, :8] = 1.0
    aligned = torch.zeros(1, 16, 16)
    aligned[:, :, 8:] = 1.0  # the image has an edge where the prediction has one
    flat = torch.zeros(1, 16, 16)
    assert edge_aware_smoothness(pred, aligned) < edge_aware_smoothness(pred, flat)


def test_image_derivatives_equal_the_3x3_filters_with_zero_padding():
    kernels = [
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],  # Sobel x
        [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],  # Sobel y
        [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]],  # Laplacian
    ]
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    for derivative, kernel in zip(image_derivatives(x), kernels):
        weight = torch.tensor(kernel, dtype=x.dtype).view(1, 1, 3, 3)
        expected = F.conv2d(x.reshape(6, 1, 7, 9), weight, padding=1).view(2, 3, 7, 9)
        assert torch.allclose(derivative, expected, atol=1e-12)


def test_focal_loss_counts_only_valid_cells():
    shape = (1, 1, 2, 1, 2)  # L=1 frame, B=1 sample, 2 objects, 1x2 cells
    logits = torch.tensor([2.0, -1.0, 0.5, 0.5]).view(shape)
    targets = torch.tensor([1.0, 0.0, 1.0, 1.0]).view(shape)
    ignore = torch.tensor([0.0, 1.0, 0.0, 0.0]).view(shape)
    valid = torch.tensor([[1.0, 0.0]])  # object 2 is padding
    loss = reliable_region_focal(logits, targets, ignore, valid, alpha=0.5)
    p = torch.sigmoid(torch.tensor(2.0))
    expected = 0.5 * (-torch.log(p)) * (1 - p) ** 2  # only cell (object 1, x=0) counts
    assert torch.allclose(loss, expected / (1 + 1e-8), atol=1e-7)
    manual = sigmoid_focal_loss(torch.tensor([2.0]), torch.tensor([1.0]), alpha=0.5)
    assert torch.allclose(manual, expected.view(1), atol=1e-7)


def test_consistency_is_the_mean_squared_difference():
    a, b = torch.rand(2, 12, 4, 4), torch.rand(2, 12, 4, 4)
    assert consistency(a, a) == 0
    assert torch.allclose(consistency(a, b), ((a - b) ** 2).mean())


def test_smoothness_on_distinct_channels_equals_all_channels():
    """The unused channels of soft_aggregate's logits are copies of channel 0: computing them once, weighted,
    gives the 12-channel value and the same gradients."""
    torch.manual_seed(0)
    fg = torch.rand(3, 2, 20, 24, dtype=torch.float64, requires_grad=True)
    gray = torch.rand(3, 20, 24, dtype=torch.float64)
    _, logits = soft_aggregate(fg)
    index, weights = distinct_channels(logits, num_slots=2)
    assert index == [0, 1, 2, 11] and weights.tolist() == [9.0, 1.0, 1.0, 1.0]
    fast = smoothness_of_logits(logits, gray, 10.0, num_slots=2)
    (fast_grad,) = torch.autograd.grad(fast, fg, retain_graph=True)
    full = edge_aware_smoothness(torch.softmax(logits, dim=1), gray, 10.0)
    (full_grad,) = torch.autograd.grad(full, fg)
    assert torch.allclose(fast, full, rtol=1e-12, atol=0)
    assert torch.allclose(fast_grad, full_grad, rtol=1e-9, atol=1e-15)


def test_smoothness_falls_back_to_all_channels_when_unused_channels_differ():
    logits = torch.randn(2, 12, 8, 8, dtype=torch.float64)
    gray = torch.rand(2, 8, 8, dtype=torch.float64)
    assert distinct_channels(logits, num_slots=1) is None
    expected = edge_aware_smoothness(torch.softmax(logits, dim=1), gray, 10.0)
    assert torch.equal(smoothness_of_logits(logits, gray, 10.0, num_slots=1), expected)
    assert distinct_channels(logits, num_slots=10) is None  # no channel left to share
