"""`--devices N` (cli/launch.py): a failure in the started processes is one line naming it."""

from __future__ import annotations


def test_an_unexpected_failure_in_a_process_is_one_line_naming_it(monkeypatch, capsys):
    from llada_cli.cli import launch

    torchrun_stderr = [
        "W1125 03:40:00.000000 123 torch/distributed/run.py:792] Setting OMP_NUM_THREADS\n",
        "step 1/4  loss 6.2\n",
        "[rank1]: Traceback (most recent call last):\n",
        '[rank1]:   File "trainer.py", line 10, in step\n',
        "[rank1]: RuntimeError: CUDA error: an illegal memory access. Compile with TORCH_USE_CUDA_DSA\n",
        "E1125 03:40:01.000000 123 torch/distributed/elastic/multiprocessing/api.py:869] failed\n",
    ]

    class Torchrun:
        def __init__(self, *args, **kwargs):
            self.stderr = iter(torchrun_stderr)

        def wait(self):
            return 1

    monkeypatch.setattr(launch.subprocess, "Popen", Torchrun)
    assert launch.launch(2, ["pretrain", "ar"]) == 1
    assert capsys.readouterr().err == (
        "step 1/4  loss 6.2\n"
        "error: training failed in process 1: RuntimeError: CUDA error: an illegal memory access\n"
    )
