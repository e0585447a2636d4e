"""The stream runtime: the loop that feeds the processor from the bus and writes its outputs.

The processor in :mod:`marketlake.streaming` is pure computation (ticks in, bars, windows,
late ticks and alerts out, its state as bytes) and never imports this package. Here live the
pieces that touch the outside world: the tick producer, the pipeline loop and its in-process
runner, the exactly-once sink, the checkpoint store with its bus offsets, and run statistics.
"""
