"""Run by test_trainer under torchrun: train, then dump this rank's weights for comparison."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from egmt.config import EGMTConfig
from egmt.train.trainer import Trainer

config_path, run_dir = sys.argv[1], Path(sys.argv[2])
trainer = Trainer(EGMTConfig.load(config_path), run_dir)
rank = trainer.dist.rank
if rank == 0:
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(run_dir / "init.safetensors"))
trainer.fit()
state = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
save_file(state, str(run_dir / f"rank{rank}.safetensors"))
dist.barrier()
trainer.close()
