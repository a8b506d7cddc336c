"""Run by test_ddp_sharding under torchrun: train while recording, per rank, which dataset
items were loaded in which epoch; then dump the model's and the loss module's state."""

import json
import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from egmt.config import EGMTConfig
from egmt.train.trainer import Trainer

config_path, run_dir = sys.argv[1], Path(sys.argv[2])
trainer = Trainer(EGMTConfig.load(config_path), run_dir)
rank = trainer.dist.rank
seen: list[tuple[int, int]] = []  # (epoch, dataset index) in loading order


class Recording(type(trainer.dataset)):
    def __getitem__(self, i):
        seen.append((trainer.epoch, int(i)))
        return super().__getitem__(i)


trainer.dataset.__class__ = Recording
trainer.fit()
run_dir.mkdir(parents=True, exist_ok=True)
save_file({k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}, str(run_dir / f"model{rank}.safetensors"))
save_file(
    {k: v.detach().contiguous() for k, v in trainer.criterion.state_dict().items()}, str(run_dir / f"loss{rank}.safetensors")
)
(run_dir / f"seen{rank}.json").write_text(json.dumps(seen))
dist.barrier()
trainer.close()
