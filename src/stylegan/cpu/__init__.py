"""Speed on the CPU, in one place; each choice changes how fast, never what is computed (within float32 or, by
choice, bfloat16 rounding):

- :mod:`~stylegan.cpu.memory`: glibc's malloc keeps freed memory for reuse (no page faults per feature map);
- :mod:`~stylegan.cpu.precision`: bfloat16 in the reduced-precision layers where the CPU has it natively;
- :mod:`~stylegan.cpu.threads`: a training process takes the cores that are idle, not more;
- :mod:`~stylegan.cpu.layout`: channels-last feature maps, where oneDNN's convolutions are fastest.

The measurements behind each are in docs/speed.md ("Speed choices in the code"). This package imports nothing
of the rest of stylegan, so that ``nn`` and ``networks`` can use it.
"""
