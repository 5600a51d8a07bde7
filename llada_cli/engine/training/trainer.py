"""One fit() loop for every stage (AR/diffusion, pretrain/SFT).

AdamW, warmup + schedule, grad clipping and accumulation, periodic validation, metrics.jsonl,
atomic checkpoints, early stopping, and exact resume: a checkpoint holds the optimizer, the
step, the data position and every RNG state, so a killed run continues with the same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch

from ..config import TrainConfig
from ..data.packing import BatchStream
from ..errors import LladaError, UsageError, named
from ..model.checkpoint import (
    EMA_FILE,
    TRAINER_FILE,
    WEIGHTS_FILE,
    load_trainer_state,
    load_weights,
    save_trainer_state,
    save_weights,
)
from ..model.transformer import Transformer
from ..objectives.losses import LossOutput
from ..runs.folder import Run
from ..runtime.device import autocast_for, batch_out_of_memory, compile_blocks, gradient_scaler, resolve_dtype
from ..runtime.distributed import World
from ..runtime.sharding import (
    load_optimizer_state,
    load_whole_weights,
    optimizer_state,
    reshard,
    shard,
    whole_weights,
)
from ..schedules import learning_rate
from .ema import EMA
from .loggers import MetricsLogger, open_logger
from .metrics import LogWindow, append_metrics, truncate_metrics
from .plan import StepPlan
from .request import EMA_WITH_FSDP

Batch = Any  # PretrainBatch, SFTBatch or PairBatch: a dataclass of tensors (or of such dataclasses)
Objective = Callable[[Transformer, Batch, torch.Generator, float], LossOutput]


@dataclass
class TrainEvent:
    kind: Literal["prepare", "start", "log", "eval", "checkpoint", "end"]  # prepare: step = bytes read
    step: int
    total_steps: int
    record: dict[str, Any]


EventHandler = Callable[[TrainEvent], None]


class Trainer:
    def __init__(
        self,
        model: Transformer,
        objective: Objective,
        train_batch: Callable[[torch.Tensor], Batch],
        train_rows: int,
        val_batches: list[Batch],
        config: TrainConfig,
        plan: StepPlan,
        run: Run,
        device: torch.device,
        on_event: EventHandler | None = None,
        data_summary: dict[str, Any] | None = None,
        world: World | None = None,
    ) -> None:
        self.model = model.to(device)
        self.model.gradient_checkpointing = config.gradient_checkpointing
        self.compile_fallback = compile_blocks(self.model) if config.compile else None
        self.world = world or World()
        self.config = replace(config, dtype=resolve_dtype(config.dtype, device))
        self.sharded = config.fsdp and self.world.world_size > 1  # one process: nothing to shard
        if self.sharded:
            shard(self.model, self.world.world_size, device, self.config.dtype)
        self.objective = objective
        # validation may score a steadier variant (diffusion: the plain ELBO, no random cuts)
        self.val_objective = getattr(objective, "for_validation", lambda: objective)()
        self.train_batch = train_batch
        self.val_batches = val_batches
        self.scaler = gradient_scaler(device, self.config.dtype)
        self.run = run
        self.device = device
        # progress output and every file belong to the main process
        self.on_event = on_event if on_event and self.world.is_main else (lambda event: None)
        self.data_summary = data_summary or {}
        self.plan = plan
        self.stream = BatchStream(
            train_rows, config.batch_size, config.seed, self.world.rank, self.world.world_size
        )
        self.logger: MetricsLogger | None = None  # tensorboard or wandb, opened by fit()
        # each process draws its own masks (rank 0: the single-process stream)
        self.generator = torch.Generator().manual_seed(config.seed + 1 + self.world.rank)
        self.optimizer = self._make_optimizer()
        if config.ema_decay and self.sharded:  # started by torchrun, which the request cannot see
            raise UsageError(EMA_WITH_FSDP)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay else None
        self.step = 0
        self.tokens_seen = 0
        self.best: dict[str, float] | None = None
        self.evals_without_gain = 0
        self.window = LogWindow()
        self.trained_seconds = 0.0  # up to the last checkpoint loaded (resume), or none
        self.fit_started = time.perf_counter()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # no weight decay on norms (1-D weights), as usual for transformers
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        betas = (0.9, self.config.adam_beta2)
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.config.learning_rate, betas=betas, fused=fused)

    # -- state for exact resume -------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "optimizer": optimizer_state(self.model, self.optimizer),
            "data": self.stream.state_dict(),
            "generator": self.world.gather(self.generator.get_state()),  # one per process
            "torch_rng": self.world.gather(torch.get_rng_state()),
            "evals_without_gain": self.evals_without_gain,
            "best": self.best or {},
            "window": self.window.state_dict(),
            "train_seconds": self.train_seconds(),
            "scaler": self.scaler.state_dict(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if hasattr(self.objective, "state_dict"):  # GRPO: the answers it is still reusing, per process
            state["objective"] = self.world.gather(self.objective.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
        load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.stream.load_state_dict(state["data"])
        self.generator.set_state(_own(state["generator"], self.world.rank))
        torch.set_rng_state(_own(state["torch_rng"], self.world.rank))
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.evals_without_gain = int(state["evals_without_gain"])
        self.best = dict(state["best"]) or None
        self.window.load_state_dict(state["window"])
        self.trained_seconds = float(state.get("train_seconds", 0.0))  # none in older checkpoints
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if "objective" in state and hasattr(self.objective, "load_state_dict"):
            self.objective.load_state_dict(_own(state["objective"], self.world.rank))

    def train_seconds(self) -> float:
        """Time spent training to this step: this process's fit, after the resumed checkpoint's
        (work redone after a kill counts once; the wait between a stop and its resume, never)."""
        return round(self.trained_seconds + time.perf_counter() - self.fit_started, 3)

    def resume(self) -> None:
        """Continue from the run's latest checkpoint; metrics past it are dropped (they will be redone)."""
        step = self.run.latest_step()
        if step is None:  # killed before its first checkpoint: start over, metrics too
            self._truncate_metrics(after_step=0)
            return
        folder = self.run.checkpoint_dir(step)
        weights = load_weights(folder / WEIGHTS_FILE, config=self.model.config, device=str(self.device))
        load_whole_weights(self.model, weights.state_dict())
        self.load_state_dict(load_trainer_state(folder / TRAINER_FILE))
        if self.ema is not None:
            self.ema.load(load_weights(folder / EMA_FILE, device=str(self.device)).state_dict())
        self._truncate_metrics(after_step=self.step)

    def _truncate_metrics(self, after_step: int) -> None:
        if self.world.is_main:
            truncate_metrics(self.run.metrics_path, after_step)

    # -- the loop ---------------------------------------------------------------------

    def fit(self) -> str:
        """Train to the planned step count; returns why it ended ("completed" or "early_stopped")."""
        total = self.plan.total
        start = {
            "resumed_from": self.step,
            "parameters": self.model.num_parameters,
            "device": str(self.device),
            "dtype": self.config.dtype,
            "threads": torch.get_num_threads(),
            "rows_per_step": self.config.batch_size * self.plan.accumulation * self.world.world_size,
            **self.data_summary,
        }
        if self.compile_fallback:
            start["warning"] = self.compile_fallback
        self.on_event(TrainEvent("start", self.step, total, start))
        if self.world.is_main:
            self.logger = open_logger(self.config.logger, self.run, self.step, asdict(self.config))
        self.fit_started = time.perf_counter()
        try:
            return self._loop(total)
        except (RuntimeError, MemoryError) as error:  # a batch too large for the memory: one line
            refusal = batch_out_of_memory(error, self.config.batch_size, self.device)
            if refusal is None:
                raise
            raise refusal from None
        finally:
            if self.logger is not None:
                self.logger.close()

    def _loop(self, total: int) -> str:
        self.model.train()
        while self.step < total:
            loss, tokens, metrics = self._train_step()
            self.step += 1
            if not math.isfinite(loss):  # nothing after this is worth saving
                good = self.run.latest_step()
                where = f"its last good checkpoint is step {good}" if good else "it has no checkpoint"
                raise LladaError(
                    f"the loss became {loss} at step {self.step}: training diverged and stopped; {where} "
                    f"(a lower {named('learning_rate')} or more {named('warmup_steps')} may help)"
                )
            self.tokens_seen += tokens
            self.window.add(loss, tokens)
            last = self.step == total
            logging = self.step % self.config.log_every == 0 or last
            evaluating = self.step % self.plan.eval_every == 0 or last
            improved = stop = False
            if logging or evaluating:
                record = self._log_record(metrics, consume_window=logging)
                if evaluating:
                    improved, stop = self._evaluate(record)
                self._write_metrics(record)
                # one "log" event per such step, with the validation loss when there is one
                self.on_event(TrainEvent("log", self.step, self.plan.total, record))
            keep_best = improved and self.config.early_stop_patience > 0
            if stop or keep_best or last or self.step % self.plan.save_every == 0:
                self._save()
            if stop:
                return self._finish("early_stopped")
        return self._finish("completed")

    def _train_step(self) -> tuple[float, int, dict[str, float]]:
        lr = learning_rate(
            self.step,
            self.plan.total,
            self.config.learning_rate,
            self.config.lr_schedule,
            self.plan.warmup,
            self.config.lr_stable_ratio,
            self.config.min_lr_ratio,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        progress = self.step / self.plan.total
        loss_sum, metrics = torch.zeros((), device=self.device), {}
        tokens: int | torch.Tensor = 0
        for _ in range(self.plan.accumulation):
            batch = _to_device(self.train_batch(self.stream.next_indices()), self.device)
            with autocast_for(self.device, self.config.dtype):
                out = self.objective(self.model, batch, self.generator, progress)
            self.scaler.scale(out.loss / self.plan.accumulation).backward()
            loss_sum += out.loss.detach() / self.plan.accumulation
            tokens += out.tokens
            metrics = out.metrics
        if not self.sharded:  # FSDP averages gradients itself, shard by shard, in the backward pass
            self.world.average_gradients(self.model)  # once per optimizer step: micro-batches need no sync
        self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        # One device-to-host copy per optimizer step: the loss, the token count and the metrics together.
        names = list(metrics)
        stacked = torch.stack(
            [loss_sum.float(), torch.as_tensor(tokens, device=self.device).float()]
            + [torch.as_tensor(metrics[name], device=self.device).float() for name in names]
        )
        values = (self.world.sum(stacked) / self.world.world_size).tolist()  # means over the processes
        tokens_seen = round(values[1] * self.world.world_size)
        return values[0], tokens_seen, {"lr": lr, **dict(zip(names, values[2:], strict=True))}

    def _log_record(self, metrics: dict[str, float], consume_window: bool) -> dict[str, Any]:
        record: dict[str, Any] = {"step": self.step, "tokens": self.tokens_seen}
        if consume_window and self.window.steps:
            record["loss"] = self.window.mean_loss
            record["tokens_per_s"] = self.window.tokens_per_second
            self.window = LogWindow()
        record.update(metrics)
        record["epoch"] = round(self.stream.epochs_done, 4)
        return record

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        """Mean objective over the fixed validation batches, with a fixed noise seed so steps compare
        (of the moving average of the weights, where the run keeps one)."""
        if not self.val_batches:
            return None
        self.model.eval()
        generator = torch.Generator().manual_seed(self.config.seed + 12345)
        losses = []
        with self.ema.applied() if self.ema is not None else nullcontext():
            for batch in self.val_batches:
                with autocast_for(self.device, self.config.dtype):
                    out = self.val_objective(self.model, _to_device(batch, self.device), generator, 1.0)
                losses.append(out.loss.float())
        reshard(self.model)
        self.model.train()
        return torch.stack(losses).mean().item()

    def _evaluate(self, record: dict[str, Any]) -> tuple[bool, bool]:
        """Adds val_loss to the record; returns (a new best, early stopping says: stop now)."""
        val_loss = self.validation_loss()
        if val_loss is None:
            return False, False
        record["val_loss"] = val_loss
        self.on_event(TrainEvent("eval", self.step, self.plan.total, record))
        if self.best is None or val_loss < self.best["val_loss"] - self.config.early_stop_min_delta:
            self.best = {"step": self.step, "val_loss": val_loss}
            self.evals_without_gain = 0
            return True, False
        self.evals_without_gain += 1
        patience = self.config.early_stop_patience
        return False, patience > 0 and self.evals_without_gain >= patience

    def _write_metrics(self, record: dict[str, Any]) -> None:
        if not self.world.is_main:
            return
        append_metrics(self.run.metrics_path, record)
        if self.logger is not None:
            self.logger.log(record)

    def _save(self) -> None:
        # every process takes part: they gather random states (and, sharded, the weights)
        state, weights = self.state_dict(), whole_weights(self.model)
        if not self.world.is_main:
            return

        def write(folder):
            save_weights(self.model.config, weights, folder / WEIGHTS_FILE)
            if self.ema is not None:
                save_weights(self.model.config, self.ema.weights(weights), folder / EMA_FILE)
            save_trainer_state(state, folder / TRAINER_FILE)

        self.run.commit_checkpoint(self.step, write)
        protect = {int(self.best["step"])} if self.best else set()
        self.run.prune_checkpoints(self.config.keep_checkpoints, protect)
        self.run.update_info(
            step=self.step, tokens=self.tokens_seen, best=self.best, train_seconds=state["train_seconds"]
        )
        self.on_event(TrainEvent("checkpoint", self.step, self.plan.total, {"step": self.step}))

    def _finish(self, status: str) -> str:
        if self.world.is_main:
            finished = time.strftime("%Y-%m-%dT%H:%M:%S")
            self.run.update_info(status=status, finished=finished, train_seconds=self.train_seconds())
        self.on_event(TrainEvent("end", self.step, self.plan.total, {"status": status, "best": self.best}))
        return status


def _own(saved: Any, rank: int) -> Any:
    """This process's entry of a per-process list of states (a single state: saved by one process)."""
    return saved[rank % len(saved)] if isinstance(saved, list) else saved


def _to_device(batch: Batch, device: torch.device) -> Batch:
    """A batch's tensors on the device; a batch of batches (DPO's pairs), each of them."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return type(batch)(**{k: _to_device(v, device) for k, v in vars(batch).items()})
