"""The RHMNet network: backbone, bottleneck, decoder with reliability-hierarchical memory, and heads."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from rhmnet.config import Config, ConfigError
from rhmnet.labels import MAX_OBJECTS
from rhmnet.model.backbones import build_backbone
from rhmnet.model.embeddings import LevelEmbeddings, PositionEmbedding
from rhmnet.model.feature_readout import LabelledCells, labelled_cells, predicted_cells, read, readout_keys
from rhmnet.model.heads import adapt_heads, mask_head, reliable_region_head, soft_aggregate, soft_aggregate_used
from rhmnet.model.matching import DecoderLayer
from rhmnet.model.memory import MemoryBank, MemoryEntry
from rhmnet.model.memory_encoder import attach, block_average, label_channels, one_hot, similarity_labels
from rhmnet.model.ops import conv_module

INITIAL_LEVEL, RELIABLE_LEVEL = 0, 1
# feature readout: initial weight of the centred vote ``2 * vote - 1`` added to each head's foreground logit,
# so that the kNN vote tells objects apart from the first training step (learned per head from there)
READOUT_GAIN = 3.0


@dataclass
class FrameFeatures:
    """Object-independent per-frame work: backbone features, bottleneck tokens, positions, head adapters."""

    backbone: list[torch.Tensor]  # strides 4, 8, 16
    feat: torch.Tensor  # bottleneck map [B, C, h, w]
    tokens: torch.Tensor  # [B, hw, C]
    pos: torch.Tensor  # [1, hw, C]
    reliable_adapted: list[torch.Tensor]
    mask_adapted: list[list[torch.Tensor]]

    @property
    def size(self) -> tuple[int, int]:
        return self.feat.shape[-2], self.feat.shape[-1]


@dataclass
class FrameOutput:
    """Predictions for one frame and the memory entries it proposes."""

    mask_probs: list[torch.Tensor]  # per refinement layer [B, K, H, W]
    mask_logits: list[torch.Tensor]  # per refinement layer [B, K, H, W]
    reliable_prob: torch.Tensor  # [B, K, H/4, W/4]
    reliable_logit: torch.Tensor  # raw per-object logits [B*num_objects, 1, H/4, W/4]
    reliable_entry: MemoryEntry  # the temporary reliable-region entry
    mask_candidates: list[torch.Tensor]  # decoder candidates of the mask layers [B*num_objects, hw, C]
    # decode(used_channels_only=True): probabilities above hold channels [unlabeled, objects..., background];
    # these hold the probability of each unused channel ([B, 1, H, W] per layer, and for the reliable region)
    mask_unused: Optional[list[torch.Tensor]] = None
    reliable_unused: Optional[torch.Tensor] = None
    readout_keys: Optional[torch.Tensor] = None  # the feature readout's keys of this frame [B, D, h8, w8]


@dataclass
class ClipOutput:
    """Training forward over a clip (lists over frames)."""

    mask_probs: list[list[torch.Tensor]]
    mask_logits: list[list[torch.Tensor]]
    reliable_probs: list[torch.Tensor]
    reliable_logits: list[torch.Tensor]
    valid: torch.Tensor  # [B, num_objects]


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """Foreground probability ``softmax(logits)[0]`` of two-logit stride-4 head outputs, upsampled x4.

    For two logits the softmax is ``sigmoid(l0 - l1)`` and bilinear upsampling is linear, so only the
    difference is upsampled (half the full-resolution work of upsampling both logits). Returns
    ``[N, 4h, 4w]``.
    """
    if logits.shape[1] == 2:
        diff = F.interpolate(logits[:, :1] - logits[:, 1:], scale_factor=4, mode="bilinear", align_corners=True)
        return torch.sigmoid(diff[:, 0])
    logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=True)
    return torch.softmax(logits, dim=1)[:, 0]


def position_table_size(cfg: Config) -> list[int]:
    """Rows and columns of the learned position table: ``MODEL.POS_TABLE_SIZE``, else derived from the
    training crop (``DATASETS.CROP_SIZE / TOTAL_STRIDE``, as the authors do: 24 x 24 for 384 x 384).

    The model stores the resolved size in its config (and so in its checkpoints), so a model keeps its
    table when it is fine-tuned or evaluated with another crop size."""
    m = cfg.MODEL
    if m.POS_TABLE_SIZE:
        return [int(v) for v in m.POS_TABLE_SIZE]
    return [s // m.TOTAL_STRIDE for s in cfg.DATASETS.CROP_SIZE]


def compute_valid(object_counts: torch.Tensor, num_slots: int) -> torch.Tensor:
    """``valid[b, o] = 1`` for the real objects of each sample (``object_counts[b]`` of ``num_slots``)."""
    ids = torch.arange(num_slots, device=object_counts.device)
    return (ids.unsqueeze(0) < object_counts.unsqueeze(1)).float()


class RHMNet(nn.Module):
    """Reliability-Hierarchical Memory Network for scribble-supervised video object segmentation."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        cfg = copy.deepcopy(cfg)  # the caller's config stays as given; self.cfg holds resolved values
        m = cfg.MODEL
        self.cfg = cfg
        self.stride = m.TOTAL_STRIDE
        self.hidden_dim = m.HIDDEN_DIM
        self.refine_layers = m.REFINE_LAYERS
        self.refine_threshold = list(m.TRANSFORMER.REFINE_THRESHOLD)
        # not a check at load: the authors' defaults (configs/authors_default.yaml, the base of their experiment
        # files) pair 2 refinement layers with 2 thresholds, and such a base must load
        if len(self.refine_threshold) != self.refine_layers + 1:
            raise ConfigError(
                f"MODEL.TRANSFORMER.REFINE_THRESHOLD needs {self.refine_layers + 1} values "
                f"(one per decoder layer), got {self.refine_threshold}"
            )
        self.object_threshold = m.OBJECT_THRESHOLD
        self.use_similarity = m.ATTACH.USE_SIMILARITY
        self.similarity_thresholds = (m.ATTACH.THRESHOLD_MEAN_FEAT, m.ATTACH.THRESHOLD_SOFT_LABEL)
        self.use_pos_embedding = m.TRANSFORMER.USE_POS_EMBEDDING
        self.detach_inter_frame = m.DETACH_INTER_FRAME
        self.bg_prototype = m.BG_PROTOTYPE
        self.scribble_for_masks = m.TRANSFORMER.USING_SCRIBBLE_MEM_FOR_MASK
        self.label_readout = m.LABEL_READOUT  # none | attention | features
        self.readout_previous_frame = m.READOUT_PREVIOUS_FRAME

        self.backbone = build_backbone(m.BACKBONE)
        dims = self.backbone.channels
        self.bottleneck = nn.Sequential(nn.Conv2d(dims[2], m.HIDDEN_DIM, 1), nn.GroupNorm(32, m.HIDDEN_DIM))
        nn.init.xavier_uniform_(self.bottleneck[0].weight)
        nn.init.zeros_(self.bottleneck[0].bias)
        rows, cols = m.POS_TABLE_SIZE = position_table_size(cfg)  # saved with the model's config
        self.position_embedding = PositionEmbedding(rows, cols, m.HIDDEN_DIM // 2)
        levels = 2 + m.REFINE_LAYERS if m.USE_HR_LEVEL_EMBEDDING else 1
        self.level_embedding = LevelEmbeddings(levels, m.HIDDEN_DIM)
        t = m.TRANSFORMER
        self.decoder = nn.ModuleList(
            DecoderLayer(m.HIDDEN_DIM, t.NHEAD, t.DIM_FEEDFORWARD, t.DROPOUT, t.ACTIVATION, m.LABEL_READOUT != "none")
            for _ in range(m.REFINE_LAYERS + 1)
        )
        self.reliable_head = reliable_region_head(m.HIDDEN_DIM, m.HIDDEN_DIM, dims)
        num_mask_heads = m.REFINE_LAYERS if m.WITH_REFINE else 1
        self.mask_heads = nn.ModuleList(
            mask_head(m.HIDDEN_DIM, m.HIDDEN_DIM, dims, m.DECODER.OUT_DIM) for _ in range(num_mask_heads)
        )
        # feature readout: per head (reliable region, then the mask heads) the weight of the vote in its logit
        self.readout_gain: Optional[nn.Parameter] = None
        if m.LABEL_READOUT == "features":
            self.readout_gain = nn.Parameter(torch.full((1 + num_mask_heads,), READOUT_GAIN))

    # -- inference preparation ------------------------------------------------------------------------
    def prepare_for_inference(self) -> RHMNet:
        """Eval mode, channels-last weights and the backbone's batch norm folded into its convolutions.

        In place (returns ``self``); the same outputs, markedly faster convolutions (see
        ``scripts/benchmark_model.py``). ``train()`` undoes the folding; loading weights refolds them, and
        so does :meth:`refresh_folding`, which whoever changes weights in place must call
        (``rhmnet.model.backbones.folding`` gives the rule).
        """
        self.eval()
        self.to(memory_format=torch.channels_last)
        self.backbone.fold_batch_norm()
        return self

    def refresh_folding(self) -> None:
        """Rebuild the backbone's folded copies from the current weights (after changing them in place)."""
        self.backbone.refresh_folding()

    @property
    def prepared_for_inference(self) -> bool:
        """Whether :meth:`prepare_for_inference` is in effect."""
        return not self.training and self.backbone.batch_norm_folded

    # -- building blocks ---------------------------------------------------------------------------------
    def _mask_head_index(self, refine_layer: int) -> int:
        """Index of the mask head of ``refine_layer`` (one shared head when WITH_REFINE is off)."""
        return min(refine_layer, len(self.mask_heads) - 1)

    def encode(self, images: torch.Tensor) -> FrameFeatures:
        """Everything about frames ``[N, 3, H, W]`` that does not depend on objects or memory."""
        backbone = self.backbone(images)
        conv, norm = self.bottleneck
        feat = norm(conv_module(conv, backbone[2]))
        reliable_adapted, *mask_adapted = adapt_heads([self.reliable_head, *self.mask_heads], backbone)
        return FrameFeatures(
            backbone=backbone,
            feat=feat,
            tokens=feat.flatten(2).transpose(1, 2),
            pos=self.position_tokens(*feat.shape[-2:]),
            reliable_adapted=reliable_adapted,
            mask_adapted=mask_adapted,
        )

    def position_tokens(self, h: int, w: int) -> torch.Tensor:
        """Position embedding tokens ``[1, hw, C]`` of an ``h x w`` feature map (zeros when disabled)."""
        pos = self.position_embedding(h, w)
        if not self.use_pos_embedding:
            pos = torch.zeros_like(pos)
        return pos.flatten(2).transpose(1, 2)

    def initial_entries(
        self, feats: FrameFeatures, scribble: torch.Tensor, num_objects: int, with_background: bool = True
    ) -> list[MemoryEntry]:
        """Initial-scribble entries (one per decoder layer) from a frame and its one-hot scribble."""
        x = self.decoder[0].self_block(feats.tokens, feats.pos).repeat_interleave(num_objects, 0)
        candidates = [x + feats.pos]
        for layer in self.decoder[1:]:
            x = layer.self_block(x, feats.pos)
            candidates.append(x + feats.pos)
        if self.use_similarity:
            labels = similarity_labels(scribble, feats.feat, num_objects, *self.similarity_thresholds)
        else:
            labels = block_average(scribble.to(feats.feat.dtype), self.stride)
        e_obj, e_bg = self.level_embedding.level(INITIAL_LEVEL)
        bg = e_bg if (with_background and self.bg_prototype) else None
        readout = self._readout_labels(labels, num_objects)
        cells = labelled_cells(feats.backbone, scribble) if self.label_readout == "features" else None
        return [MemoryEntry(attach(c, labels, num_objects, e_obj, bg), readout, cells) for c in candidates]

    def _readout_labels(self, labels: torch.Tensor, num_objects: int) -> Optional[torch.Tensor]:
        """The label channels a memory entry carries for the attention readout (None otherwise)."""
        return label_channels(labels, num_objects) if self.label_readout == "attention" else None

    def _feature_readout(
        self, feats: FrameFeatures, bank: MemoryBank, num_objects: int
    ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """The feature readout of a frame (None, None, None when off): per object ``[vote, mass]`` at stride 8
        ``[B*num_objects, 2, h8, w8]``, the same pooled to tokens ``[B*num_objects, hw, 2]``, and the frame's
        readout keys."""
        cells = bank.labelled_cells() if self.label_readout == "features" else None
        if cells is None:
            return None, None, None
        keys = readout_keys(feats.backbone)
        fine = read(cells, keys, num_objects).to(feats.tokens.dtype)
        tokens = F.adaptive_avg_pool2d(fine, feats.size).flatten(2).transpose(1, 2)
        return fine, tokens, keys

    def previous_frame_cells(self, out: FrameOutput, bank: MemoryBank, num_objects: int) -> Optional[LabelledCells]:
        """A decoded frame's confident cells for the next frame's feature readout
        (``MODEL.READOUT_PREVIOUS_FRAME``; None when off)."""
        if not self.readout_previous_frame or out.readout_keys is None:
            return None
        width = bank.initial[0].cells.labels.shape[-1] if bank.initial[0].cells is not None else 0
        return predicted_cells(out.readout_keys, out.mask_probs[-1], num_objects, width)

    def _add_vote(self, logit: torch.Tensor, fine: Optional[torch.Tensor], head: int) -> torch.Tensor:
        """A head's logits ``[N, C, H/4, W/4]`` with ``gain * (2 * vote - 1)`` added to the foreground channel."""
        if fine is None or self.readout_gain is None:
            return logit
        vote = F.interpolate(fine[:, :1], size=logit.shape[-2:], mode="bilinear", align_corners=False)
        bias = self.readout_gain[head] * (2 * vote - 1)
        return torch.cat([logit[:, :1] + bias, logit[:, 1:]], dim=1)

    def _map(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *size)

    def _aggregate(self, fg: torch.Tensor, used_only: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """K-channel ``(probs, logits)``, or with ``used_only`` ``(used-channel probs, unused-channel prob)``."""
        return soft_aggregate_used(fg) if used_only else soft_aggregate(fg)

    def decode(
        self, feats: FrameFeatures, bank: MemoryBank, valid: torch.Tensor, used_channels_only: bool = False
    ) -> FrameOutput:
        """Match one frame against memory: reliable region first, then the masks.

        ``used_channels_only`` (inference): probabilities hold only the channels ``[unlabeled, objects...,
        background]`` (see :func:`soft_aggregate_used`), ``mask_logits`` / ``reliable_logit`` are not
        aggregated logits but the probability of the unused channels; equal values, less full-resolution work.
        """
        batch, num_objects = valid.shape
        size = feats.size
        pos = feats.pos
        layer0 = self.decoder[0]
        x = layer0.self_block(feats.tokens, pos)
        x_pos = x + pos
        query = layer0.cross_attn.project_query(x_pos).repeat_interleave(num_objects, 0)
        candidate0 = x_pos.repeat_interleave(num_objects, 0)
        fine, readout, keys = self._feature_readout(feats, bank, num_objects)
        x = layer0.cross_block(candidate0, bank.key_value(0, layer0.cross_attn), query, readout)

        reliable_logit = self._add_vote(self.reliable_head(self._map(x, size), feats.reliable_adapted), fine, 0)
        fg = torch.sigmoid(reliable_logit).view(batch, num_objects, *reliable_logit.shape[-2:])
        fg = fg * valid[..., None, None]
        reliable_prob, reliable_unused = self._aggregate(fg, used_channels_only)
        reliable_entry = self._attach_prediction(
            candidate0, reliable_prob, self.refine_threshold[0], size, RELIABLE_LEVEL, False
        )

        temporary = reliable_entry
        mask_probs, mask_logits, candidates = [], [], []
        for index, layer in enumerate(self.decoder[1:]):
            level = index + 1
            x = layer.self_block(x, pos)
            x_pos = x + pos
            candidates.append(x_pos)
            x = layer.cross_block(x_pos, bank.key_value(level, layer.cross_attn, temporary), readout=readout)
            head = self._mask_head_index(index)
            logits = self.mask_heads[head](self._map(x, size), feats.mask_adapted[head])
            logits = self._add_vote(logits, fine, 1 + head)
            fg = foreground_probability(logits)
            fg = fg.view(batch, num_objects, *fg.shape[-2:])
            fg = fg * valid[..., None, None]
            prob, logit = self._aggregate(fg, used_channels_only)
            mask_probs.append(prob)
            mask_logits.append(logit)
            if level + 1 < len(self.decoder):  # the next mask layer reads this layer's temporary entry
                threshold = self.refine_threshold[level]
                temporary = self._attach_prediction(x_pos, prob, threshold, size, level + 1, True)
        if used_channels_only:
            return FrameOutput(mask_probs, [], reliable_prob, reliable_logit, reliable_entry, candidates,
                               mask_logits, reliable_unused, keys)
        return FrameOutput(mask_probs, mask_logits, reliable_prob, reliable_logit, reliable_entry, candidates,
                           readout_keys=keys)

    def _attach_prediction(
        self,
        candidate: torch.Tensor,
        prob: torch.Tensor,
        threshold: float,
        size: tuple[int, int],
        level: int,
        with_bg: bool,
    ) -> MemoryEntry:
        """Attach a prediction, thresholded at its own resolution then block-averaged, to a candidate."""
        return self._attach_labels(candidate, self._prediction_labels(prob, threshold, size), level, with_bg)

    @staticmethod
    def _prediction_labels(prob: torch.Tensor, threshold: float, size: tuple[int, int]) -> torch.Tensor:
        """Probabilities thresholded at their own resolution, block-averaged to the token grid ``size``."""
        if threshold > 0:
            prob = prob * (prob > threshold).to(prob.dtype)
        return block_average(prob, prob.shape[-1] // size[1])

    def _attach_labels(self, candidate: torch.Tensor, labels: torch.Tensor, level: int, with_bg: bool) -> MemoryEntry:
        """The entry of token-grid labels ``[B, K, h, w]`` attached to a candidate with the embeddings of ``level``."""
        e_obj, e_bg = self.level_embedding.level(level)
        num_objects = candidate.shape[0] // labels.shape[0]
        tokens = attach(candidate, labels, num_objects, e_obj, e_bg if with_bg else None)
        return MemoryEntry(tokens, self._readout_labels(labels, num_objects))

    def mask_entries(
        self, out: FrameOutput, size: tuple[int, int], threshold: float, level_offset: int
    ) -> list[MemoryEntry]:
        """Mask-level entries of a processed frame, labelled with its final probabilities.

        Training uses ``threshold = OBJECT_THRESHOLD`` and levels ``2..``; inference no threshold and
        levels ``1..`` (as the authors' tracker does).
        """
        final = out.mask_probs[-1]
        if self.detach_inter_frame:
            final = final.detach()
        labels = self._prediction_labels(final, threshold, size)  # the same for every candidate
        entries = []
        for index, candidate in enumerate(out.mask_candidates):
            level = index + level_offset
            entries.append(self._attach_labels(candidate, labels, level, True))
        return entries

    # -- training forward ------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, init_scribble: torch.Tensor, num_objects: torch.Tensor) -> ClipOutput:
        """Run a clip ``[B, L, 3, H, W]`` from the initial scribble of its first frame.

        ``init_scribble``: label map ``[B, H, W]`` or one-hot ``[B, K, H, W]``; ``num_objects``: ``[B]``.
        Memory starts from frame 0's scribble; every frame is decoded and then stored in memory.
        """
        batch, length = images.shape[:2]
        slots = int(num_objects.max())
        if not 1 <= slots <= MAX_OBJECTS:
            raise ValueError(f"num_objects must be in 1..{MAX_OBJECTS}, got {num_objects.tolist()}")
        valid = compute_valid(num_objects, slots)
        scribble = init_scribble if init_scribble.dim() == 4 else one_hot(init_scribble)
        feats = self.encode(images.transpose(0, 1).reshape(length * batch, *images.shape[2:]))
        frames = [self._select_frame(feats, f, batch) for f in range(length)]
        initial = self.initial_entries(frames[0], scribble.to(images.dtype), slots)
        bank = MemoryBank(initial, self.scribble_for_masks)
        out = ClipOutput([], [], [], [], valid)
        for f, frame in enumerate(frames):
            result = self.decode(frame, bank, valid)
            out.mask_probs.append(result.mask_probs)
            out.mask_logits.append(result.mask_logits)
            out.reliable_probs.append(result.reliable_prob)
            out.reliable_logits.append(result.reliable_logit)
            if f + 1 < length:
                bank.append(result.reliable_entry, self.mask_entries(result, frame.size, self.object_threshold, 2))
                bank.previous_cells = self.previous_frame_cells(result, bank, slots)
        return out

    @staticmethod
    def _select_frame(feats: FrameFeatures, index: int, batch: int) -> FrameFeatures:
        """Frame ``index`` of clip-major batched features."""
        rows = slice(index * batch, (index + 1) * batch)
        return FrameFeatures(
            backbone=[f[rows] for f in feats.backbone],
            feat=feats.feat[rows],
            tokens=feats.tokens[rows],
            pos=feats.pos,
            reliable_adapted=[a[rows] for a in feats.reliable_adapted],
            mask_adapted=[[a[rows] for a in adapted] for adapted in feats.mask_adapted],
        )
