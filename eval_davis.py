"""DAVIS 2016/2017 evaluation, as ``rhmnet-eval-davis`` (see rhmnet/evaluation/davis.py for the options and
output layout).

python eval_davis.py --gpu 0 --set val --year 17 --config video_training --ckpt-num 80
python eval_davis.py --evaluate-only --results-path RES --davis-root ROOT --year 17 --set val
"""

import sys

from rhmnet.evaluation.davis import cli

if __name__ == "__main__":
    sys.exit(cli())
