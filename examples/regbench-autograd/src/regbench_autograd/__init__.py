"""regbench-autograd: trainers whose gradients come from HIPS autograd, as a regbench plugin.

Rules: importing this package imports no framework. regbench lists ``TRAINERS`` (the entry point
``regbench.trainers: autograd``) without autograd; each spec's ``module``, ``regbench_autograd.trainer``, is
the backend module, imported with autograd when one of its trainers is first probed or used.
"""

from backends import TrainerSpec, families

#: The backend module of both trainers (VARIANTS, unavailable, prepare, PREPARE).
TRAINER_MODULE = "regbench_autograd.trainer"
#: The families it has code of its own for: the keys of its PREPARE table, read from its source (autograd is not
#: imported); it runs every other family from its module's loss (``written_once``).
_OWN = {"problems": families(TRAINER_MODULE), "written_once": True}

#: ``tutorial``: the loss, then ``autograd.grad`` of the loss function (two forward passes an epoch);
#: ``fused``: ``autograd.value_and_grad`` (loss and gradient from one forward pass). No roles: those are the
#: built-in trainers'.
TRAINERS = (
    TrainerSpec("autograd", "grad", "tutorial", "cpu", TRAINER_MODULE, **_OWN),
    TrainerSpec("autograd", "grad", "fused", "cpu", TRAINER_MODULE, **_OWN),
)
