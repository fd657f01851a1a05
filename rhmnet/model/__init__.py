"""Network modules of RHMNet, one module per concept of the paper.

=========================================  ===========================  ==========================================
paper concept                              module                       main classes / functions
=========================================  ===========================  ==========================================
backbone (ResNet-50 to layer3)             ``model/backbones/``         ``ResNetBackbone``, ``build_backbone``
bottleneck, position and level embeddings ``model/embeddings.py``      ``PositionEmbedding``, ``LevelEmbeddings``
memory encoder (labels -> memory entries)  ``model/memory_encoder.py``  ``attach``, ``similarity_labels``
reliability-hierarchical memory bank       ``model/memory.py``          ``MemoryBank``, ``MemoryEntry``
matching (self- and cross-attention)       ``model/matching.py``        ``DecoderLayer``, ``Attention``
segmentation heads (reliable region, mask) ``model/heads.py``           ``RefinementHead``, ``soft_aggregate``
the whole network                          ``model/rhmnet.py``          ``RHMNet``
=========================================  ===========================  ==========================================
"""

from rhmnet.model.rhmnet import ClipOutput, FrameFeatures, FrameOutput, RHMNet

__all__ = ["ClipOutput", "FrameFeatures", "FrameOutput", "RHMNet"]
