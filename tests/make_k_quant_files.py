"""Make the K-quant GGUF files of the tests with llama.cpp's own quantizer.

    pip install llama-cpp-python   # built from source, 10-15 minutes
    python tests/make_k_quant_files.py

A random-weight Llama (tests/test_gguf.py's `K_CONFIG`, seed 8) is written
as an F32 GGUF file, then quantized by `llama_model_quantize` to Q4_K_M,
Q5_K_M, Q3_K_M and Q2_K, which mix their K-quant with others (Q6_K, Q5_K,
Q4_K, Q3_K) within a role (`attn_v`, `ffn_down`, the output head) as the
files people download do.  The results
(about 1 MB each) are committed in tests/data, so that CI needs no
llama.cpp.  Made with llama-cpp-python 0.3.36.
"""

from __future__ import annotations

import ctypes
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
FILES = {"Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
         "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M", "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K"}


def main() -> None:
    import llama_cpp

    from tests.conftest import random_llama
    from tests.gguf_models import write_gguf
    from tests.test_gguf import K_CONFIG

    with tempfile.TemporaryDirectory() as tmp:
        f32 = write_gguf(random_llama(8, **K_CONFIG), Path(tmp) / "f32.gguf")
        for name, ftype in FILES.items():
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = getattr(llama_cpp, ftype)
            out = DATA / f"llama-{name}.gguf"
            if llama_cpp.llama_model_quantize(str(f32).encode(), str(out).encode(), ctypes.byref(params)) != 0:
                raise SystemExit(f"llama_model_quantize failed for {name}")
            print(out)


if __name__ == "__main__":
    main()
