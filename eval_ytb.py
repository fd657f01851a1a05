"""YouTube-VOS evaluation, as ``rhmnet-eval-ytb`` (see rhmnet/evaluation/youtube.py for the options and output
layout).

python eval_ytb.py --gpu 0 --set val --config video_training --ckpt-num 80 --size 1000
"""

import sys

from rhmnet.evaluation.youtube import cli

if __name__ == "__main__":
    sys.exit(cli())
