"""tfg.optim: the optimizers SGD, RMSprop, Adagrad, Adam, AdamW and the learning-rate schedulers
(tfg.optim.lr_scheduler), as in torch.optim."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "lr_scheduler"]
