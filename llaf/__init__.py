"""llaf: large-language-model inference whose forward pass is written in Futhark.

    from llaf import init, gen
    params = init("gpt2")                 # or a transformers model, a directory, a weight file
    ids = gen([15496, 11, 616], params, 20)

    import llaf
    model = llaf.load()                   # the default model and its tokenizer
    model.generate("Once upon a time", 64, temperature=0.8, top_p=0.95, seed=1)
"""

__version__ = "0.1.0"  # pyproject.toml reads it from here

from .errors import EngineError, LlafError, OutOfMemoryError
from .generation import Model, load
from .logprobs import TokenLogprob
from .model import Cache, Params, embed, forward, gen, hidden, init, prefill, step
from .sampling import Sampler, SamplingParams
from .weights import Weights, save

__all__ = ["Cache", "EngineError", "LlafError", "Model", "OutOfMemoryError", "Params", "Sampler", "SamplingParams",
           "TokenLogprob", "Weights", "embed", "forward", "gen", "hidden", "init", "load", "prefill", "save", "step"]
