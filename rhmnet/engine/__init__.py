"""Training engine shared by the pre-training and video-training scripts."""
