"""What the processes of a multi-process run (``accelerate launch``) must agree on or share.

Each helper is a collective: every process must call it at the same point of training, or
the ones that did wait forever. In one process each is a plain local computation, with no
device synchronisation beyond what reading a value needs.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def any_process(accelerator, flag: bool) -> bool:
    """Whether ``flag`` holds on at least one process (a deadline one process has passed stops all)."""
    if accelerator.num_processes == 1:
        return flag
    votes = torch.tensor([float(flag)], device=accelerator.device)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX)
    return bool(votes.item())


def main_process_floats(accelerator, values: list[float]) -> list[float]:
    """The main process's ``values`` on every process; the others pass placeholders of the same
    length. Float64, so a score reads the same after the trip as before it."""
    if accelerator.num_processes == 1:
        return values
    shared = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    dist.broadcast(shared, src=0)
    return shared.tolist()


def sum_over_processes(accelerator, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor summed over the processes (a copy; the inputs are left alone)."""
    if accelerator.num_processes == 1:
        return tensors
    summed = [tensor.clone() for tensor in tensors]
    for tensor in summed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return summed


def gather_states(accelerator, state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Every process's ``state`` (same names and shapes on each), in process order, on the CPU:
    how the main process collects the random states it writes into a checkpoint, so that no
    other process needs to write to the run directory."""
    if accelerator.num_processes == 1:
        return [state]
    gathered: list[dict[str, torch.Tensor]] = [{} for _ in range(accelerator.num_processes)]
    for name in sorted(state):
        local = state[name].to(accelerator.device)
        pieces = [torch.empty_like(local) for _ in range(accelerator.num_processes)]
        dist.all_gather(pieces, local)
        for index, piece in enumerate(pieces):
            gathered[index][name] = piece.cpu()
    return gathered
